from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FeatureVersionStatus(_message.Message):
    __slots__ = ("feature", "version", "state", "stale_entity_ratio", "sampled_values", "blocked", "last_consistency", "psi")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STALE_ENTITY_RATIO_FIELD_NUMBER: _ClassVar[int]
    SAMPLED_VALUES_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    LAST_CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    feature: str
    version: int
    state: str
    stale_entity_ratio: float
    sampled_values: int
    blocked: bool
    last_consistency: float
    psi: float
    def __init__(self, feature: _Optional[str] = ..., version: _Optional[int] = ..., state: _Optional[str] = ..., stale_entity_ratio: _Optional[float] = ..., sampled_values: _Optional[int] = ..., blocked: _Optional[bool] = ..., last_consistency: _Optional[float] = ..., psi: _Optional[float] = ...) -> None: ...

class GroupStatus(_message.Message):
    __slots__ = ("group", "newest_event_micros", "freshness_lag_seconds", "seconds_since_sync", "missed_refreshes", "sync_delay_seconds", "stale", "breaches", "features", "sync_interval_seconds", "max_age_seconds", "alerts", "warnings", "health")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    NEWEST_EVENT_MICROS_FIELD_NUMBER: _ClassVar[int]
    FRESHNESS_LAG_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_SINCE_SYNC_FIELD_NUMBER: _ClassVar[int]
    MISSED_REFRESHES_FIELD_NUMBER: _ClassVar[int]
    SYNC_DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    BREACHES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    SYNC_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    group: str
    newest_event_micros: int
    freshness_lag_seconds: float
    seconds_since_sync: float
    missed_refreshes: int
    sync_delay_seconds: float
    stale: bool
    breaches: _containers.RepeatedScalarFieldContainer[str]
    features: _containers.RepeatedCompositeFieldContainer[FeatureVersionStatus]
    sync_interval_seconds: int
    max_age_seconds: int
    alerts: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    health: str
    def __init__(self, group: _Optional[str] = ..., newest_event_micros: _Optional[int] = ..., freshness_lag_seconds: _Optional[float] = ..., seconds_since_sync: _Optional[float] = ..., missed_refreshes: _Optional[int] = ..., sync_delay_seconds: _Optional[float] = ..., stale: _Optional[bool] = ..., breaches: _Optional[_Iterable[str]] = ..., features: _Optional[_Iterable[_Union[FeatureVersionStatus, _Mapping]]] = ..., sync_interval_seconds: _Optional[int] = ..., max_age_seconds: _Optional[int] = ..., alerts: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[str]] = ..., health: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: str
    def __init__(self, group: _Optional[str] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("groups", "now_micros")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    NOW_MICROS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[GroupStatus]
    now_micros: int
    def __init__(self, groups: _Optional[_Iterable[_Union[GroupStatus, _Mapping]]] = ..., now_micros: _Optional[int] = ...) -> None: ...

class MismatchCounts(_message.Message):
    __slots__ = ("value_differs", "version_differs", "missing_online", "stale", "entity_key_drift")
    VALUE_DIFFERS_FIELD_NUMBER: _ClassVar[int]
    VERSION_DIFFERS_FIELD_NUMBER: _ClassVar[int]
    MISSING_ONLINE_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    ENTITY_KEY_DRIFT_FIELD_NUMBER: _ClassVar[int]
    value_differs: int
    version_differs: int
    missing_online: int
    stale: int
    entity_key_drift: int
    def __init__(self, value_differs: _Optional[int] = ..., version_differs: _Optional[int] = ..., missing_online: _Optional[int] = ..., stale: _Optional[int] = ..., entity_key_drift: _Optional[int] = ...) -> None: ...

class FeatureValidation(_message.Message):
    __slots__ = ("feature", "version", "sampled", "matching", "consistency", "mismatches", "psi", "skewed")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SAMPLED_FIELD_NUMBER: _ClassVar[int]
    MATCHING_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    MISMATCHES_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    SKEWED_FIELD_NUMBER: _ClassVar[int]
    feature: str
    version: int
    sampled: int
    matching: int
    consistency: float
    mismatches: MismatchCounts
    psi: float
    skewed: bool
    def __init__(self, feature: _Optional[str] = ..., version: _Optional[int] = ..., sampled: _Optional[int] = ..., matching: _Optional[int] = ..., consistency: _Optional[float] = ..., mismatches: _Optional[_Union[MismatchCounts, _Mapping]] = ..., psi: _Optional[float] = ..., skewed: _Optional[bool] = ...) -> None: ...

class ValidateRequest(_message.Message):
    __slots__ = ("group", "sample", "skew", "action", "versions", "feature")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    SKEW_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    group: str
    sample: int
    skew: bool
    action: str
    versions: _containers.RepeatedScalarFieldContainer[int]
    feature: str
    def __init__(self, group: _Optional[str] = ..., sample: _Optional[int] = ..., skew: _Optional[bool] = ..., action: _Optional[str] = ..., versions: _Optional[_Iterable[int]] = ..., feature: _Optional[str] = ...) -> None: ...

class ValidateResponse(_message.Message):
    __slots__ = ("group", "features", "actions_taken")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_TAKEN_FIELD_NUMBER: _ClassVar[int]
    group: str
    features: _containers.RepeatedCompositeFieldContainer[FeatureValidation]
    actions_taken: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group: _Optional[str] = ..., features: _Optional[_Iterable[_Union[FeatureValidation, _Mapping]]] = ..., actions_taken: _Optional[_Iterable[str]] = ...) -> None: ...

class SetBlockedRequest(_message.Message):
    __slots__ = ("group", "feature", "version", "blocked")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    group: str
    feature: str
    version: int
    blocked: bool
    def __init__(self, group: _Optional[str] = ..., feature: _Optional[str] = ..., version: _Optional[int] = ..., blocked: _Optional[bool] = ...) -> None: ...

class SetBlockedResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResyncRequest(_message.Message):
    __slots__ = ("id", "group", "reason", "requested_micros")
    ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_MICROS_FIELD_NUMBER: _ClassVar[int]
    id: int
    group: str
    reason: str
    requested_micros: int
    def __init__(self, id: _Optional[int] = ..., group: _Optional[str] = ..., reason: _Optional[str] = ..., requested_micros: _Optional[int] = ...) -> None: ...

class PendingResyncsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PendingResyncsResponse(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[ResyncRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[ResyncRequest, _Mapping]]] = ...) -> None: ...

class AckResyncRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class AckResyncResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
