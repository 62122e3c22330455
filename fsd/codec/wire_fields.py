"""Field numbers of the fsd.v1 messages the native code reads or writes directly (GetFeatures requests and
replies), defined once here; tests/unit/codec/test_wire_fields.py checks them against the proto descriptors.
native/wire_fields.pxi mirrors this file and is checked the same way."""
from __future__ import annotations

LENGTH_DELIMITED = 2
VARINT = 0
FIXED64 = 1

# GetFeaturesRequest
REQUEST_ENTITIES = 1
REQUEST_FEATURES = 2
REQUEST_MANIFEST = 3
# EntityColumn
ENTITY_COLUMN_NAME = 1
ENTITY_COLUMN_INT64_VALUES = 2
ENTITY_COLUMN_STRING_VALUES = 3
# Int64List / StringList
INT64_LIST_VALUES = 1
STRING_LIST_VALUES = 1
# GetFeaturesResponse
RESPONSE_ENTITY_COUNT = 1
RESPONSE_FEATURES = 2
RESPONSE_SERVED_AT = 3
RESPONSE_MANIFEST = 4
RESPONSE_REGISTRY_EPOCH = 5


def tag(field: int, wire_type: int = LENGTH_DELIMITED) -> int:
    return field << 3 | wire_type

# FeatureColumn
FEATURE_COLUMN_VALUES = 6
FEATURE_COLUMN_IS_NULL = 7
FEATURE_COLUMN_STATUSES = 8
FEATURE_COLUMN_EVENT_TIMES = 9
# FloatVectorList
VECTOR_DIM = 1
VECTOR_VALUES = 2

# The same tags as native/wire_fields.pxi's WIRE_TAGS, by "Message.field".
WIRE_TAGS = {
    "GetFeaturesRequest.entities": tag(REQUEST_ENTITIES),
    "GetFeaturesRequest.features": tag(REQUEST_FEATURES),
    "GetFeaturesRequest.manifest": tag(REQUEST_MANIFEST),
    "EntityColumn.name": tag(ENTITY_COLUMN_NAME),
    "EntityColumn.int64_values": tag(ENTITY_COLUMN_INT64_VALUES),
    "EntityColumn.string_values": tag(ENTITY_COLUMN_STRING_VALUES),
    "Int64List.values": tag(INT64_LIST_VALUES),
    "StringList.values": tag(STRING_LIST_VALUES),
    "FloatVectorList.dim": tag(VECTOR_DIM, VARINT),
    "FloatVectorList.values": tag(VECTOR_VALUES),
    "FeatureColumn.values": tag(FEATURE_COLUMN_VALUES),
    "FeatureColumn.is_null": tag(FEATURE_COLUMN_IS_NULL),
    "FeatureColumn.statuses": tag(FEATURE_COLUMN_STATUSES),
    "FeatureColumn.event_time_micros": tag(FEATURE_COLUMN_EVENT_TIMES),
    "GetFeaturesResponse.entity_count": tag(RESPONSE_ENTITY_COUNT, VARINT),
    "GetFeaturesResponse.features": tag(RESPONSE_FEATURES),
    "GetFeaturesResponse.served_at_micros": tag(RESPONSE_SERVED_AT, VARINT),
    "GetFeaturesResponse.manifest": tag(RESPONSE_MANIFEST),
    "GetFeaturesResponse.registry_epoch": tag(RESPONSE_REGISTRY_EPOCH, VARINT),
}
