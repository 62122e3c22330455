"""The wire tags the native code and the pure-Python writers use are the proto descriptors' own, defined once."""
from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor

from fsd import _native
from fsd.codec import wire_fields
from fsd.v1 import serving_pb2, types_pb2

MESSAGES = {
    "GetFeaturesRequest": serving_pb2.GetFeaturesRequest, "EntityColumn": serving_pb2.EntityColumn,
    "FeatureColumn": serving_pb2.FeatureColumn, "GetFeaturesResponse": serving_pb2.GetFeaturesResponse,
    "Int64List": types_pb2.Int64List, "StringList": types_pb2.StringList, "FloatVectorList": types_pb2.FloatVectorList,
}
_VARINT_TYPES = {FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_INT32,
                 FieldDescriptor.TYPE_BOOL, FieldDescriptor.TYPE_ENUM}


def descriptor_tag(name: str) -> int:
    message, field_name = name.split(".")
    field = MESSAGES[message].DESCRIPTOR.fields_by_name[field_name]
    repeated = field.is_repeated  # proto3 packs repeated scalars: length-delimited
    wire_type = 0 if field.type in _VARINT_TYPES and not repeated else 2
    return field.number << 3 | wire_type


@pytest.mark.parametrize("name", sorted(wire_fields.WIRE_TAGS))
def test_python_tags_match_the_descriptors(name: str) -> None:
    assert wire_fields.WIRE_TAGS[name] == descriptor_tag(name)


def test_native_tags_are_the_same_set() -> None:
    assert dict(_native.WIRE_TAGS) == wire_fields.WIRE_TAGS


def test_column_list_fields_equal_the_dtype_numbers() -> None:
    """The fused writer tags a Column's typed list with the dtype number itself."""
    from fsd.domain import DType

    oneof = types_pb2.Column.DESCRIPTOR.oneofs_by_name["values"]
    assert sorted((f.number, f.name) for f in oneof.fields) == sorted((int(d), n) for d, n in zip(DType, [
        "int64_values", "double_values", "float_values", "bool_values", "string_values", "bytes_values", "vector_values"]))
