from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTYPE_UNSPECIFIED: _ClassVar[DType]
    DTYPE_INT64: _ClassVar[DType]
    DTYPE_DOUBLE: _ClassVar[DType]
    DTYPE_FLOAT: _ClassVar[DType]
    DTYPE_BOOL: _ClassVar[DType]
    DTYPE_STRING: _ClassVar[DType]
    DTYPE_BYTES: _ClassVar[DType]
    DTYPE_FLOAT_VECTOR: _ClassVar[DType]

class ValueStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_STATUS_UNSPECIFIED: _ClassVar[ValueStatus]
    PRESENT: _ClassVar[ValueStatus]
    NOT_FOUND: _ClassVar[ValueStatus]
    STALE: _ClassVar[ValueStatus]
    BLOCKED: _ClassVar[ValueStatus]
DTYPE_UNSPECIFIED: DType
DTYPE_INT64: DType
DTYPE_DOUBLE: DType
DTYPE_FLOAT: DType
DTYPE_BOOL: DType
DTYPE_STRING: DType
DTYPE_BYTES: DType
DTYPE_FLOAT_VECTOR: DType
VALUE_STATUS_UNSPECIFIED: ValueStatus
PRESENT: ValueStatus
NOT_FOUND: ValueStatus
STALE: ValueStatus
BLOCKED: ValueStatus

class Int64List(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, values: _Optional[_Iterable[int]] = ...) -> None: ...

class DoubleList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class FloatList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class BoolList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, values: _Optional[_Iterable[bool]] = ...) -> None: ...

class StringList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class BytesList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, values: _Optional[_Iterable[bytes]] = ...) -> None: ...

class FloatVectorList(_message.Message):
    __slots__ = ("dim", "values")
    DIM_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    dim: int
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, dim: _Optional[int] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class Column(_message.Message):
    __slots__ = ("int64_values", "double_values", "float_values", "bool_values", "string_values", "bytes_values", "vector_values")
    INT64_VALUES_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUES_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUES_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUES_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUES_FIELD_NUMBER: _ClassVar[int]
    BYTES_VALUES_FIELD_NUMBER: _ClassVar[int]
    VECTOR_VALUES_FIELD_NUMBER: _ClassVar[int]
    int64_values: Int64List
    double_values: DoubleList
    float_values: FloatList
    bool_values: BoolList
    string_values: StringList
    bytes_values: BytesList
    vector_values: FloatVectorList
    def __init__(self, int64_values: _Optional[_Union[Int64List, _Mapping]] = ..., double_values: _Optional[_Union[DoubleList, _Mapping]] = ..., float_values: _Optional[_Union[FloatList, _Mapping]] = ..., bool_values: _Optional[_Union[BoolList, _Mapping]] = ..., string_values: _Optional[_Union[StringList, _Mapping]] = ..., bytes_values: _Optional[_Union[BytesList, _Mapping]] = ..., vector_values: _Optional[_Union[FloatVectorList, _Mapping]] = ...) -> None: ...
