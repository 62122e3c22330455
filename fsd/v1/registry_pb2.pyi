from fsd.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VersionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSION_STATE_UNSPECIFIED: _ClassVar[VersionState]
    PENDING: _ClassVar[VersionState]
    SERVING: _ClassVar[VersionState]
    DEPRECATED: _ClassVar[VersionState]
    RETIRED: _ClassVar[VersionState]

class KeyType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_TYPE_UNSPECIFIED: _ClassVar[KeyType]
    KEY_TYPE_INT64: _ClassVar[KeyType]
    KEY_TYPE_STRING: _ClassVar[KeyType]
VERSION_STATE_UNSPECIFIED: VersionState
PENDING: VersionState
SERVING: VersionState
DEPRECATED: VersionState
RETIRED: VersionState
KEY_TYPE_UNSPECIFIED: KeyType
KEY_TYPE_INT64: KeyType
KEY_TYPE_STRING: KeyType

class EntityKeySpec(_message.Message):
    __slots__ = ("name", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: KeyType
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[KeyType, str]] = ...) -> None: ...

class FeatureDef(_message.Message):
    __slots__ = ("name", "dtype", "nullable", "vector_dim", "description", "transformation", "window_seconds", "source_dependencies", "meaning", "owner", "tags", "max_age_seconds", "allow_nan", "aggregation")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    NULLABLE_FIELD_NUMBER: _ClassVar[int]
    VECTOR_DIM_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TRANSFORMATION_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    MEANING_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_NAN_FIELD_NUMBER: _ClassVar[int]
    AGGREGATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: _types_pb2.DType
    nullable: bool
    vector_dim: int
    description: str
    transformation: str
    window_seconds: int
    source_dependencies: _containers.RepeatedScalarFieldContainer[str]
    meaning: str
    owner: str
    tags: _containers.ScalarMap[str, str]
    max_age_seconds: int
    allow_nan: bool
    aggregation: Aggregation
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[_Union[_types_pb2.DType, str]] = ..., nullable: _Optional[bool] = ..., vector_dim: _Optional[int] = ..., description: _Optional[str] = ..., transformation: _Optional[str] = ..., window_seconds: _Optional[int] = ..., source_dependencies: _Optional[_Iterable[str]] = ..., meaning: _Optional[str] = ..., owner: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., max_age_seconds: _Optional[int] = ..., allow_nan: _Optional[bool] = ..., aggregation: _Optional[_Union[Aggregation, _Mapping]] = ...) -> None: ...

class Aggregation(_message.Message):
    __slots__ = ("function", "column", "window_seconds", "filter")
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    function: str
    column: str
    window_seconds: int
    filter: str
    def __init__(self, function: _Optional[str] = ..., column: _Optional[str] = ..., window_seconds: _Optional[int] = ..., filter: _Optional[str] = ...) -> None: ...

class EventColumn(_message.Message):
    __slots__ = ("name", "dtype")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: _types_pb2.DType
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[_Union[_types_pb2.DType, str]] = ...) -> None: ...

class GroupDef(_message.Message):
    __slots__ = ("name", "entity_keys", "source", "owner", "description", "tags", "max_age_seconds", "sync_interval_seconds", "features", "policy", "timestamp_field", "sync_adaptive", "sync_min_seconds", "sync_max_seconds", "event_columns", "allowed_lateness_seconds")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENTITY_KEYS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SYNC_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_FIELD_NUMBER: _ClassVar[int]
    SYNC_ADAPTIVE_FIELD_NUMBER: _ClassVar[int]
    SYNC_MIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SYNC_MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_LATENESS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    entity_keys: _containers.RepeatedCompositeFieldContainer[EntityKeySpec]
    source: str
    owner: str
    description: str
    tags: _containers.ScalarMap[str, str]
    max_age_seconds: int
    sync_interval_seconds: int
    features: _containers.RepeatedCompositeFieldContainer[FeatureDef]
    policy: FreshnessPolicy
    timestamp_field: str
    sync_adaptive: bool
    sync_min_seconds: int
    sync_max_seconds: int
    event_columns: _containers.RepeatedCompositeFieldContainer[EventColumn]
    allowed_lateness_seconds: int
    def __init__(self, name: _Optional[str] = ..., entity_keys: _Optional[_Iterable[_Union[EntityKeySpec, _Mapping]]] = ..., source: _Optional[str] = ..., owner: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., max_age_seconds: _Optional[int] = ..., sync_interval_seconds: _Optional[int] = ..., features: _Optional[_Iterable[_Union[FeatureDef, _Mapping]]] = ..., policy: _Optional[_Union[FreshnessPolicy, _Mapping]] = ..., timestamp_field: _Optional[str] = ..., sync_adaptive: _Optional[bool] = ..., sync_min_seconds: _Optional[int] = ..., sync_max_seconds: _Optional[int] = ..., event_columns: _Optional[_Iterable[_Union[EventColumn, _Mapping]]] = ..., allowed_lateness_seconds: _Optional[int] = ...) -> None: ...

class FreshnessPolicy(_message.Message):
    __slots__ = ("max_lag_seconds", "max_stale_ratio", "max_missed_refreshes", "min_consistency", "on_inconsistency")
    MAX_LAG_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_STALE_RATIO_FIELD_NUMBER: _ClassVar[int]
    MAX_MISSED_REFRESHES_FIELD_NUMBER: _ClassVar[int]
    MIN_CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    ON_INCONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    max_lag_seconds: int
    max_stale_ratio: float
    max_missed_refreshes: int
    min_consistency: float
    on_inconsistency: str
    def __init__(self, max_lag_seconds: _Optional[int] = ..., max_stale_ratio: _Optional[float] = ..., max_missed_refreshes: _Optional[int] = ..., min_consistency: _Optional[float] = ..., on_inconsistency: _Optional[str] = ...) -> None: ...

class ApplyRequest(_message.Message):
    __slots__ = ("groups", "applied_by", "reason", "dry_run", "expected_revision", "has_expected_revision")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    HAS_EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[GroupDef]
    applied_by: str
    reason: str
    dry_run: bool
    expected_revision: int
    has_expected_revision: bool
    def __init__(self, groups: _Optional[_Iterable[_Union[GroupDef, _Mapping]]] = ..., applied_by: _Optional[str] = ..., reason: _Optional[str] = ..., dry_run: _Optional[bool] = ..., expected_revision: _Optional[int] = ..., has_expected_revision: _Optional[bool] = ...) -> None: ...

class ApplyChange(_message.Message):
    __slots__ = ("group", "feature", "action", "version", "detail")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    group: str
    feature: str
    action: str
    version: int
    detail: str
    def __init__(self, group: _Optional[str] = ..., feature: _Optional[str] = ..., action: _Optional[str] = ..., version: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class ApplyResponse(_message.Message):
    __slots__ = ("revision", "changes")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    revision: int
    changes: _containers.RepeatedCompositeFieldContainer[ApplyChange]
    def __init__(self, revision: _Optional[int] = ..., changes: _Optional[_Iterable[_Union[ApplyChange, _Mapping]]] = ...) -> None: ...

class VersionInfo(_message.Message):
    __slots__ = ("group", "feature", "version", "state", "slot", "behaviour_hash", "created_micros", "first_published_micros", "retired_micros", "definition", "pinned_by")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    BEHAVIOUR_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATED_MICROS_FIELD_NUMBER: _ClassVar[int]
    FIRST_PUBLISHED_MICROS_FIELD_NUMBER: _ClassVar[int]
    RETIRED_MICROS_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    PINNED_BY_FIELD_NUMBER: _ClassVar[int]
    group: str
    feature: str
    version: int
    state: VersionState
    slot: int
    behaviour_hash: str
    created_micros: int
    first_published_micros: int
    retired_micros: int
    definition: FeatureDef
    pinned_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group: _Optional[str] = ..., feature: _Optional[str] = ..., version: _Optional[int] = ..., state: _Optional[_Union[VersionState, str]] = ..., slot: _Optional[int] = ..., behaviour_hash: _Optional[str] = ..., created_micros: _Optional[int] = ..., first_published_micros: _Optional[int] = ..., retired_micros: _Optional[int] = ..., definition: _Optional[_Union[FeatureDef, _Mapping]] = ..., pinned_by: _Optional[_Iterable[str]] = ...) -> None: ...

class FeatureInfo(_message.Message):
    __slots__ = ("definition", "serving_version", "versions", "version_info")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    VERSION_INFO_FIELD_NUMBER: _ClassVar[int]
    definition: FeatureDef
    serving_version: int
    versions: _containers.RepeatedScalarFieldContainer[int]
    version_info: _containers.RepeatedCompositeFieldContainer[VersionInfo]
    def __init__(self, definition: _Optional[_Union[FeatureDef, _Mapping]] = ..., serving_version: _Optional[int] = ..., versions: _Optional[_Iterable[int]] = ..., version_info: _Optional[_Iterable[_Union[VersionInfo, _Mapping]]] = ...) -> None: ...

class GroupInfo(_message.Message):
    __slots__ = ("definition", "features", "group_id")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    definition: GroupDef
    features: _containers.RepeatedCompositeFieldContainer[FeatureInfo]
    group_id: int
    def __init__(self, definition: _Optional[_Union[GroupDef, _Mapping]] = ..., features: _Optional[_Iterable[_Union[FeatureInfo, _Mapping]]] = ..., group_id: _Optional[int] = ...) -> None: ...

class ListGroupsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListGroupsResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[GroupInfo]
    def __init__(self, groups: _Optional[_Iterable[_Union[GroupInfo, _Mapping]]] = ...) -> None: ...

class GetGroupRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("group", "feature")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    group: str
    feature: str
    def __init__(self, group: _Optional[str] = ..., feature: _Optional[str] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("at_micros", "revision", "group", "feature", "version", "action", "detail", "actor", "reason")
    AT_MICROS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    at_micros: int
    revision: int
    group: str
    feature: str
    version: int
    action: str
    detail: str
    actor: str
    reason: str
    def __init__(self, at_micros: _Optional[int] = ..., revision: _Optional[int] = ..., group: _Optional[str] = ..., feature: _Optional[str] = ..., version: _Optional[int] = ..., action: _Optional[str] = ..., detail: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("entries", "versions")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    versions: _containers.RepeatedCompositeFieldContainer[VersionInfo]
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ..., versions: _Optional[_Iterable[_Union[VersionInfo, _Mapping]]] = ...) -> None: ...

class VersionRequest(_message.Message):
    __slots__ = ("group", "feature", "version", "actor", "reason", "force")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    group: str
    feature: str
    version: int
    actor: str
    reason: str
    force: bool
    def __init__(self, group: _Optional[str] = ..., feature: _Optional[str] = ..., version: _Optional[int] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class PinnedFeature(_message.Message):
    __slots__ = ("group", "feature", "version", "behaviour_hash")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BEHAVIOUR_HASH_FIELD_NUMBER: _ClassVar[int]
    group: str
    feature: str
    version: int
    behaviour_hash: str
    def __init__(self, group: _Optional[str] = ..., feature: _Optional[str] = ..., version: _Optional[int] = ..., behaviour_hash: _Optional[str] = ...) -> None: ...

class Manifest(_message.Message):
    __slots__ = ("name", "version", "created_micros", "created_by", "description", "features")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_MICROS_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    created_micros: int
    created_by: str
    description: str
    features: _containers.RepeatedCompositeFieldContainer[PinnedFeature]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., created_micros: _Optional[int] = ..., created_by: _Optional[str] = ..., description: _Optional[str] = ..., features: _Optional[_Iterable[_Union[PinnedFeature, _Mapping]]] = ...) -> None: ...

class CreateManifestRequest(_message.Message):
    __slots__ = ("name", "features", "created_by", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    features: _containers.RepeatedScalarFieldContainer[str]
    created_by: str
    description: str
    def __init__(self, name: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., created_by: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class GetManifestRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListManifestsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListManifestsResponse(_message.Message):
    __slots__ = ("manifests",)
    MANIFESTS_FIELD_NUMBER: _ClassVar[int]
    manifests: _containers.RepeatedCompositeFieldContainer[Manifest]
    def __init__(self, manifests: _Optional[_Iterable[_Union[Manifest, _Mapping]]] = ...) -> None: ...

class OfflineWrite(_message.Message):
    __slots__ = ("group", "feature", "version", "kind", "min_event_micros", "max_event_micros", "rows", "snapshot_id", "actor")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MIN_EVENT_MICROS_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENT_MICROS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    group: str
    feature: str
    version: int
    kind: str
    min_event_micros: int
    max_event_micros: int
    rows: int
    snapshot_id: str
    actor: str
    def __init__(self, group: _Optional[str] = ..., feature: _Optional[str] = ..., version: _Optional[int] = ..., kind: _Optional[str] = ..., min_event_micros: _Optional[int] = ..., max_event_micros: _Optional[int] = ..., rows: _Optional[int] = ..., snapshot_id: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class OfflineWriteAck(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class Incident(_message.Message):
    __slots__ = ("id", "opened_micros", "group", "kind", "publish_id", "detail", "resolved_micros", "resolved_by", "resolution")
    ID_FIELD_NUMBER: _ClassVar[int]
    OPENED_MICROS_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_MICROS_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    id: int
    opened_micros: int
    group: str
    kind: str
    publish_id: str
    detail: str
    resolved_micros: int
    resolved_by: str
    resolution: str
    def __init__(self, id: _Optional[int] = ..., opened_micros: _Optional[int] = ..., group: _Optional[str] = ..., kind: _Optional[str] = ..., publish_id: _Optional[str] = ..., detail: _Optional[str] = ..., resolved_micros: _Optional[int] = ..., resolved_by: _Optional[str] = ..., resolution: _Optional[str] = ...) -> None: ...

class ListIncidentsRequest(_message.Message):
    __slots__ = ("include_resolved",)
    INCLUDE_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    include_resolved: bool
    def __init__(self, include_resolved: _Optional[bool] = ...) -> None: ...

class ListIncidentsResponse(_message.Message):
    __slots__ = ("incidents",)
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[Incident]
    def __init__(self, incidents: _Optional[_Iterable[_Union[Incident, _Mapping]]] = ...) -> None: ...

class ResolveIncidentRequest(_message.Message):
    __slots__ = ("id", "resolved_by", "resolution")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    id: int
    resolved_by: str
    resolution: str
    def __init__(self, id: _Optional[int] = ..., resolved_by: _Optional[str] = ..., resolution: _Optional[str] = ...) -> None: ...

class SyncRun(_message.Message):
    __slots__ = ("id", "group", "started_micros", "ended_micros", "outcome", "error", "snapshot", "rows_read", "values_written", "rows_rejected", "reason_counts", "watermark_micros", "sync_delay_micros", "forced")
    class ReasonCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    STARTED_MICROS_FIELD_NUMBER: _ClassVar[int]
    ENDED_MICROS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    ROWS_READ_FIELD_NUMBER: _ClassVar[int]
    VALUES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    ROWS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    REASON_COUNTS_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_MICROS_FIELD_NUMBER: _ClassVar[int]
    SYNC_DELAY_MICROS_FIELD_NUMBER: _ClassVar[int]
    FORCED_FIELD_NUMBER: _ClassVar[int]
    id: int
    group: str
    started_micros: int
    ended_micros: int
    outcome: str
    error: str
    snapshot: str
    rows_read: int
    values_written: int
    rows_rejected: int
    reason_counts: _containers.ScalarMap[str, int]
    watermark_micros: int
    sync_delay_micros: int
    forced: bool
    def __init__(self, id: _Optional[int] = ..., group: _Optional[str] = ..., started_micros: _Optional[int] = ..., ended_micros: _Optional[int] = ..., outcome: _Optional[str] = ..., error: _Optional[str] = ..., snapshot: _Optional[str] = ..., rows_read: _Optional[int] = ..., values_written: _Optional[int] = ..., rows_rejected: _Optional[int] = ..., reason_counts: _Optional[_Mapping[str, int]] = ..., watermark_micros: _Optional[int] = ..., sync_delay_micros: _Optional[int] = ..., forced: _Optional[bool] = ...) -> None: ...

class ListSyncRunsRequest(_message.Message):
    __slots__ = ("group", "limit")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    group: str
    limit: int
    def __init__(self, group: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BackupInfo(_message.Message):
    __slots__ = ("path", "created_micros", "registry_revision")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CREATED_MICROS_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_REVISION_FIELD_NUMBER: _ClassVar[int]
    path: str
    created_micros: int
    registry_revision: int
    def __init__(self, path: _Optional[str] = ..., created_micros: _Optional[int] = ..., registry_revision: _Optional[int] = ...) -> None: ...

class ListSyncRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[SyncRun]
    def __init__(self, runs: _Optional[_Iterable[_Union[SyncRun, _Mapping]]] = ...) -> None: ...

class GetDeploymentRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("offline_root", "store_engine", "registry_kind", "fsd_version", "codec_native", "proto_version", "data_dir")
    OFFLINE_ROOT_FIELD_NUMBER: _ClassVar[int]
    STORE_ENGINE_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_KIND_FIELD_NUMBER: _ClassVar[int]
    FSD_VERSION_FIELD_NUMBER: _ClassVar[int]
    CODEC_NATIVE_FIELD_NUMBER: _ClassVar[int]
    PROTO_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_DIR_FIELD_NUMBER: _ClassVar[int]
    offline_root: str
    store_engine: str
    registry_kind: str
    fsd_version: str
    codec_native: bool
    proto_version: str
    data_dir: str
    def __init__(self, offline_root: _Optional[str] = ..., store_engine: _Optional[str] = ..., registry_kind: _Optional[str] = ..., fsd_version: _Optional[str] = ..., codec_native: _Optional[bool] = ..., proto_version: _Optional[str] = ..., data_dir: _Optional[str] = ...) -> None: ...

class ListReplicasRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Replica(_message.Message):
    __slots__ = ("id", "address", "epoch_confirmed", "heartbeat_micros", "started_micros", "leader")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MICROS_FIELD_NUMBER: _ClassVar[int]
    STARTED_MICROS_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    epoch_confirmed: int
    heartbeat_micros: int
    started_micros: int
    leader: bool
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., epoch_confirmed: _Optional[int] = ..., heartbeat_micros: _Optional[int] = ..., started_micros: _Optional[int] = ..., leader: _Optional[bool] = ...) -> None: ...

class ListReplicasResponse(_message.Message):
    __slots__ = ("replicas", "registry_epoch")
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_EPOCH_FIELD_NUMBER: _ClassVar[int]
    replicas: _containers.RepeatedCompositeFieldContainer[Replica]
    registry_epoch: int
    def __init__(self, replicas: _Optional[_Iterable[_Union[Replica, _Mapping]]] = ..., registry_epoch: _Optional[int] = ...) -> None: ...

class DeleteManifestRequest(_message.Message):
    __slots__ = ("name", "actor", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    actor: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteGroupRequest(_message.Message):
    __slots__ = ("name", "force", "purge_offline", "actor", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    PURGE_OFFLINE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    purge_offline: bool
    actor: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ..., purge_offline: _Optional[bool] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("revision", "detail")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    revision: int
    detail: str
    def __init__(self, revision: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...
