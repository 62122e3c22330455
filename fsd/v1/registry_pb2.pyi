from fsd.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_TYPE_UNSPECIFIED: _ClassVar[KeyType]
    KEY_TYPE_INT64: _ClassVar[KeyType]
    KEY_TYPE_STRING: _ClassVar[KeyType]
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
    __slots__ = ("name", "dtype", "nullable", "vector_dim", "description", "transformation", "window_seconds", "source_dependencies", "meaning", "owner", "tags", "max_age_seconds", "allow_nan")
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
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[_Union[_types_pb2.DType, str]] = ..., nullable: _Optional[bool] = ..., vector_dim: _Optional[int] = ..., description: _Optional[str] = ..., transformation: _Optional[str] = ..., window_seconds: _Optional[int] = ..., source_dependencies: _Optional[_Iterable[str]] = ..., meaning: _Optional[str] = ..., owner: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., max_age_seconds: _Optional[int] = ..., allow_nan: _Optional[bool] = ...) -> None: ...

class GroupDef(_message.Message):
    __slots__ = ("name", "entity_keys", "source", "owner", "description", "tags", "max_age_seconds", "sync_interval_seconds", "features")
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
    name: str
    entity_keys: _containers.RepeatedCompositeFieldContainer[EntityKeySpec]
    source: str
    owner: str
    description: str
    tags: _containers.ScalarMap[str, str]
    max_age_seconds: int
    sync_interval_seconds: int
    features: _containers.RepeatedCompositeFieldContainer[FeatureDef]
    def __init__(self, name: _Optional[str] = ..., entity_keys: _Optional[_Iterable[_Union[EntityKeySpec, _Mapping]]] = ..., source: _Optional[str] = ..., owner: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., max_age_seconds: _Optional[int] = ..., sync_interval_seconds: _Optional[int] = ..., features: _Optional[_Iterable[_Union[FeatureDef, _Mapping]]] = ...) -> None: ...

class ApplyRequest(_message.Message):
    __slots__ = ("groups", "applied_by", "reason")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[GroupDef]
    applied_by: str
    reason: str
    def __init__(self, groups: _Optional[_Iterable[_Union[GroupDef, _Mapping]]] = ..., applied_by: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

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

class FeatureInfo(_message.Message):
    __slots__ = ("definition", "serving_version", "versions")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    definition: FeatureDef
    serving_version: int
    versions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, definition: _Optional[_Union[FeatureDef, _Mapping]] = ..., serving_version: _Optional[int] = ..., versions: _Optional[_Iterable[int]] = ...) -> None: ...

class GroupInfo(_message.Message):
    __slots__ = ("definition", "features")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    definition: GroupDef
    features: _containers.RepeatedCompositeFieldContainer[FeatureInfo]
    def __init__(self, definition: _Optional[_Union[GroupDef, _Mapping]] = ..., features: _Optional[_Iterable[_Union[FeatureInfo, _Mapping]]] = ...) -> None: ...

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
