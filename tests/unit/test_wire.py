"""The array-based response encoder produces exactly the bytes protobuf produces for the same message."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fsd.codec._columns_py import column_bytes, varint
from fsd.domain import DType, ResolvedFeature
from fsd.serving.lookup import FeatureResult, LookupResult
from fsd.v1 import serving_pb2, types_pb2
from fsd.wire.serving import ResponseEncoder

int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def _values(dtype: DType, count: int, dim: int, draw) -> object:  # type: ignore[no-untyped-def]
    if dtype == DType.INT64:
        return np.array(draw(st.lists(int64s, min_size=count, max_size=count)), dtype=np.int64)
    if dtype == DType.DOUBLE:
        return np.array(draw(st.lists(st.floats(allow_nan=False), min_size=count, max_size=count)), dtype=np.float64)
    if dtype == DType.FLOAT:
        return np.array(draw(st.lists(st.floats(width=32, allow_nan=False), min_size=count, max_size=count)), dtype=np.float32)
    if dtype == DType.BOOL:
        return np.array(draw(st.lists(st.booleans(), min_size=count, max_size=count)), dtype=np.bool_)
    if dtype == DType.STRING:
        return draw(st.lists(st.text(max_size=10), min_size=count, max_size=count))
    if dtype == DType.BYTES:
        return draw(st.lists(st.binary(max_size=10), min_size=count, max_size=count))
    flat = draw(st.lists(st.floats(width=32, allow_nan=False), min_size=count * dim, max_size=count * dim))
    return np.array(flat, dtype=np.float32).reshape(count, dim)


@st.composite
def lookup_results(draw):  # type: ignore[no-untyped-def]
    count = draw(st.integers(min_value=1, max_value=12))
    features = []
    for n in range(draw(st.integers(min_value=1, max_value=5))):
        dtype = draw(st.sampled_from(list(DType)))
        dim = draw(st.integers(1, 4)) if dtype == DType.FLOAT_VECTOR else 0
        version = draw(st.integers(1, 2**31))
        feature = ResolvedFeature(f"g{n}", 1, f"f_é{n}", version, n + 1, dtype, dim, 0)
        features.append(
            FeatureResult(
                ref=f"g{n}:f_é{n}@{version}",
                feature=feature,
                values=_values(dtype, count, dim, draw),
                is_null=np.array(draw(st.lists(st.booleans(), min_size=count, max_size=count)), dtype=np.bool_),
                statuses=np.array(draw(st.lists(st.integers(1, 4), min_size=count, max_size=count)), dtype=np.uint8),
                event_times=np.array(draw(st.lists(int64s, min_size=count, max_size=count)), dtype=np.int64),
            )
        )
    return LookupResult(count, features, draw(st.integers(min_value=0, max_value=2**62)), draw(st.sampled_from(["", "fraud_model@3"])))


def _fill_column(target: types_pb2.Column, dtype: DType, values: object, dim: int) -> None:
    if dtype == DType.INT64:
        target.int64_values.values.extend(values.tolist())  # type: ignore[attr-defined]
    elif dtype == DType.DOUBLE:
        target.double_values.values.extend(values.tolist())  # type: ignore[attr-defined]
    elif dtype == DType.FLOAT:
        target.float_values.values.extend(values.tolist())  # type: ignore[attr-defined]
    elif dtype == DType.BOOL:
        target.bool_values.values.extend(values.tolist())  # type: ignore[attr-defined]
    elif dtype == DType.STRING:
        target.string_values.values.extend(values)  # type: ignore[arg-type]
    elif dtype == DType.BYTES:
        target.bytes_values.values.extend(values)  # type: ignore[arg-type]
    else:
        target.vector_values.dim = dim
        target.vector_values.values.extend(values.ravel().tolist())  # type: ignore[attr-defined]


def lookup_to_proto(result: LookupResult) -> serving_pb2.GetFeaturesResponse:
    """The same response built field by field with protobuf: the reference the byte writers are checked against."""
    response = serving_pb2.GetFeaturesResponse(entity_count=result.entity_count, served_at_micros=result.served_at_micros, manifest=result.manifest)
    for item in result.features:
        f = item.feature
        column = response.features.add(ref=item.ref, group=f.group, feature=f.feature, version=f.version, dtype=int(f.dtype))
        _fill_column(column.values, f.dtype, item.values, f.vector_dim)
        column.is_null.extend(item.is_null.tolist())
        column.statuses.extend(item.statuses.tolist())
        column.event_time_micros.extend(item.event_times.tolist())
    return response


@given(lookup_results())
def test_wire_bytes_equal_protobuf_serialisation(result: LookupResult) -> None:
    expected = lookup_to_proto(result).SerializeToString()
    encoder = ResponseEncoder()
    columns = [
        column_bytes(encoder.head(item.ref, item.feature), int(item.feature.dtype), item.feature.vector_dim, item.values, item.is_null,
                     item.statuses, item.event_times)
        for item in result.features
    ]
    encoded = encoder.encoded_response(result.entity_count, columns, result.served_at_micros, result.manifest)
    assert encoded == expected
    assert serving_pb2.GetFeaturesResponse.FromString(encoded) == lookup_to_proto(result)


@given(int64s)
def test_varint_matches_protobuf(value: int) -> None:
    message = serving_pb2.GetFeaturesResponse(served_at_micros=value)
    assert message.SerializeToString() == (b"\x18" + varint(value) if value else b"")
