from fsd.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PublishMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUBLISH_MODE_UNSPECIFIED: _ClassVar[PublishMode]
    INITIAL: _ClassVar[PublishMode]
    REFRESH: _ClassVar[PublishMode]
    BACKFILL: _ClassVar[PublishMode]
    CORRECTION: _ClassVar[PublishMode]
    RESYNC: _ClassVar[PublishMode]
PUBLISH_MODE_UNSPECIFIED: PublishMode
INITIAL: PublishMode
REFRESH: PublishMode
BACKFILL: PublishMode
CORRECTION: PublishMode
RESYNC: PublishMode

class EntityColumn(_message.Message):
    __slots__ = ("name", "int64_values", "string_values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INT64_VALUES_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    int64_values: _types_pb2.Int64List
    string_values: _types_pb2.StringList
    def __init__(self, name: _Optional[str] = ..., int64_values: _Optional[_Union[_types_pb2.Int64List, _Mapping]] = ..., string_values: _Optional[_Union[_types_pb2.StringList, _Mapping]] = ...) -> None: ...

class GetFeaturesRequest(_message.Message):
    __slots__ = ("entities", "features", "manifest")
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[EntityColumn]
    features: _containers.RepeatedScalarFieldContainer[str]
    manifest: str
    def __init__(self, entities: _Optional[_Iterable[_Union[EntityColumn, _Mapping]]] = ..., features: _Optional[_Iterable[str]] = ..., manifest: _Optional[str] = ...) -> None: ...

class FeatureColumn(_message.Message):
    __slots__ = ("ref", "group", "feature", "version", "dtype", "values", "is_null", "statuses", "event_time_micros")
    REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    IS_NULL_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_MICROS_FIELD_NUMBER: _ClassVar[int]
    ref: str
    group: str
    feature: str
    version: int
    dtype: _types_pb2.DType
    values: _types_pb2.Column
    is_null: _containers.RepeatedScalarFieldContainer[bool]
    statuses: _containers.RepeatedScalarFieldContainer[_types_pb2.ValueStatus]
    event_time_micros: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ref: _Optional[str] = ..., group: _Optional[str] = ..., feature: _Optional[str] = ..., version: _Optional[int] = ..., dtype: _Optional[_Union[_types_pb2.DType, str]] = ..., values: _Optional[_Union[_types_pb2.Column, _Mapping]] = ..., is_null: _Optional[_Iterable[bool]] = ..., statuses: _Optional[_Iterable[_Union[_types_pb2.ValueStatus, str]]] = ..., event_time_micros: _Optional[_Iterable[int]] = ...) -> None: ...

class GetFeaturesResponse(_message.Message):
    __slots__ = ("entity_count", "features", "served_at_micros", "manifest", "registry_epoch")
    ENTITY_COUNT_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    SERVED_AT_MICROS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_EPOCH_FIELD_NUMBER: _ClassVar[int]
    entity_count: int
    features: _containers.RepeatedCompositeFieldContainer[FeatureColumn]
    served_at_micros: int
    manifest: str
    registry_epoch: int
    def __init__(self, entity_count: _Optional[int] = ..., features: _Optional[_Iterable[_Union[FeatureColumn, _Mapping]]] = ..., served_at_micros: _Optional[int] = ..., manifest: _Optional[str] = ..., registry_epoch: _Optional[int] = ...) -> None: ...

class PublishChunk(_message.Message):
    __slots__ = ("publish_id", "group", "sequence", "arrow_ipc", "feature_versions", "mode", "snapshot_id")
    class FeatureVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    PUBLISH_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    publish_id: str
    group: str
    sequence: int
    arrow_ipc: bytes
    feature_versions: _containers.ScalarMap[str, int]
    mode: PublishMode
    snapshot_id: str
    def __init__(self, publish_id: _Optional[str] = ..., group: _Optional[str] = ..., sequence: _Optional[int] = ..., arrow_ipc: _Optional[bytes] = ..., feature_versions: _Optional[_Mapping[str, int]] = ..., mode: _Optional[_Union[PublishMode, str]] = ..., snapshot_id: _Optional[str] = ...) -> None: ...

class PushEventsChunk(_message.Message):
    __slots__ = ("push_id", "group", "sequence", "arrow_ipc")
    PUSH_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    push_id: str
    group: str
    sequence: int
    arrow_ipc: bytes
    def __init__(self, push_id: _Optional[str] = ..., group: _Optional[str] = ..., sequence: _Optional[int] = ..., arrow_ipc: _Optional[bytes] = ...) -> None: ...

class PublishStatusRequest(_message.Message):
    __slots__ = ("publish_id",)
    PUBLISH_ID_FIELD_NUMBER: _ClassVar[int]
    publish_id: str
    def __init__(self, publish_id: _Optional[str] = ...) -> None: ...

class PublishStatusResponse(_message.Message):
    __slots__ = ("publish_id", "known", "last_durable_sequence", "group")
    PUBLISH_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    LAST_DURABLE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    publish_id: str
    known: bool
    last_durable_sequence: int
    group: str
    def __init__(self, publish_id: _Optional[str] = ..., known: _Optional[bool] = ..., last_durable_sequence: _Optional[int] = ..., group: _Optional[str] = ...) -> None: ...

class RowRejection(_message.Message):
    __slots__ = ("row_start", "row_end", "field", "rule", "reason")
    ROW_START_FIELD_NUMBER: _ClassVar[int]
    ROW_END_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    row_start: int
    row_end: int
    field: str
    rule: str
    reason: str
    def __init__(self, row_start: _Optional[int] = ..., row_end: _Optional[int] = ..., field: _Optional[str] = ..., rule: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("publish_id", "group", "chunks_written", "chunks_skipped_duplicate", "rows_received", "rows_accepted", "rows_rejected", "values_written", "values_skipped_older", "rejections", "rejections_truncated", "reason_counts")
    class ReasonCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    PUBLISH_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_SKIPPED_DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    ROWS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    ROWS_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ROWS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    VALUES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    VALUES_SKIPPED_OLDER_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    REASON_COUNTS_FIELD_NUMBER: _ClassVar[int]
    publish_id: str
    group: str
    chunks_written: int
    chunks_skipped_duplicate: int
    rows_received: int
    rows_accepted: int
    rows_rejected: int
    values_written: int
    values_skipped_older: int
    rejections: _containers.RepeatedCompositeFieldContainer[RowRejection]
    rejections_truncated: bool
    reason_counts: _containers.ScalarMap[str, int]
    def __init__(self, publish_id: _Optional[str] = ..., group: _Optional[str] = ..., chunks_written: _Optional[int] = ..., chunks_skipped_duplicate: _Optional[int] = ..., rows_received: _Optional[int] = ..., rows_accepted: _Optional[int] = ..., rows_rejected: _Optional[int] = ..., values_written: _Optional[int] = ..., values_skipped_older: _Optional[int] = ..., rejections: _Optional[_Iterable[_Union[RowRejection, _Mapping]]] = ..., rejections_truncated: _Optional[bool] = ..., reason_counts: _Optional[_Mapping[str, int]] = ...) -> None: ...
