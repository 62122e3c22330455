# Wire tags of the fsd.v1 messages the native code reads and writes directly (mirrors fsd/codec/wire_fields.py;
# tests/unit/codec/test_wire_fields.py checks both against the proto descriptors through WIRE_TAGS below).
cdef enum:
    LENGTH_DELIMITED = 2
    REQUEST_ENTITIES_TAG = (1 << 3) | 2             # GetFeaturesRequest.entities
    REQUEST_FEATURES_TAG = (2 << 3) | 2             # GetFeaturesRequest.features
    REQUEST_MANIFEST_TAG = (3 << 3) | 2             # GetFeaturesRequest.manifest
    ENTITY_COLUMN_NAME_TAG = (1 << 3) | 2           # EntityColumn.name
    ENTITY_COLUMN_INT64_VALUES_TAG = (2 << 3) | 2   # EntityColumn.int64_values
    ENTITY_COLUMN_STRING_VALUES_TAG = (3 << 3) | 2  # EntityColumn.string_values
    LIST_VALUES_TAG = (1 << 3) | 2                  # Int64List/DoubleList/FloatList/BoolList/StringList/BytesList.values
    VECTOR_DIM_TAG = (1 << 3) | 0                   # FloatVectorList.dim
    VECTOR_VALUES_TAG = (2 << 3) | 2                # FloatVectorList.values
    FEATURE_COLUMN_VALUES_TAG = (6 << 3) | 2        # FeatureColumn.values
    FEATURE_COLUMN_IS_NULL_TAG = (7 << 3) | 2       # FeatureColumn.is_null (packed)
    FEATURE_COLUMN_STATUSES_TAG = (8 << 3) | 2      # FeatureColumn.statuses (packed)
    FEATURE_COLUMN_EVENT_TIMES_TAG = (9 << 3) | 2   # FeatureColumn.event_time_micros (packed)
    RESPONSE_ENTITY_COUNT_TAG = (1 << 3) | 0        # GetFeaturesResponse.entity_count
    RESPONSE_FEATURES_TAG = (2 << 3) | 2            # GetFeaturesResponse.features
    RESPONSE_SERVED_AT_TAG = (3 << 3) | 0           # GetFeaturesResponse.served_at_micros
    RESPONSE_MANIFEST_TAG = (4 << 3) | 2            # GetFeaturesResponse.manifest
    RESPONSE_REGISTRY_EPOCH_TAG = (5 << 3) | 0      # GetFeaturesResponse.registry_epoch

WIRE_TAGS = {
    "GetFeaturesRequest.entities": REQUEST_ENTITIES_TAG,
    "GetFeaturesRequest.features": REQUEST_FEATURES_TAG,
    "GetFeaturesRequest.manifest": REQUEST_MANIFEST_TAG,
    "EntityColumn.name": ENTITY_COLUMN_NAME_TAG,
    "EntityColumn.int64_values": ENTITY_COLUMN_INT64_VALUES_TAG,
    "EntityColumn.string_values": ENTITY_COLUMN_STRING_VALUES_TAG,
    "Int64List.values": LIST_VALUES_TAG,
    "StringList.values": LIST_VALUES_TAG,
    "FloatVectorList.dim": VECTOR_DIM_TAG,
    "FloatVectorList.values": VECTOR_VALUES_TAG,
    "FeatureColumn.values": FEATURE_COLUMN_VALUES_TAG,
    "FeatureColumn.is_null": FEATURE_COLUMN_IS_NULL_TAG,
    "FeatureColumn.statuses": FEATURE_COLUMN_STATUSES_TAG,
    "FeatureColumn.event_time_micros": FEATURE_COLUMN_EVENT_TIMES_TAG,
    "GetFeaturesResponse.entity_count": RESPONSE_ENTITY_COUNT_TAG,
    "GetFeaturesResponse.features": RESPONSE_FEATURES_TAG,
    "GetFeaturesResponse.served_at_micros": RESPONSE_SERVED_AT_TAG,
    "GetFeaturesResponse.manifest": RESPONSE_MANIFEST_TAG,
    "GetFeaturesResponse.registry_epoch": RESPONSE_REGISTRY_EPOCH_TAG,
}
