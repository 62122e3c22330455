"""Arrow columns -> dense numpy/list values with null masks, plus per-row rule violations, all vectorised."""
from __future__ import annotations

from dataclasses import dataclass, field

import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fsd.codec import MAX_KEY_STRING_BYTES
from fsd.domain import DType, FeatureSpec, KeyType

_SCALAR_TYPES = {DType.INT64: pa.int64(), DType.DOUBLE: pa.float64(), DType.FLOAT: pa.float32(), DType.BOOL: pa.bool_(),
                 DType.STRING: pa.string(), DType.BYTES: pa.binary()}


def scalar_arrow_type(dtype: DType) -> pa.DataType:
    """The Arrow type of one value of a scalar dtype (every dtype but float_vector)."""
    return _SCALAR_TYPES[dtype]

INT64_MAX = np.iinfo(np.int64).max


@dataclass(slots=True)
class ColumnValues:
    """One column ready for encoding, and which rows break which rule (rule id -> boolean mask)."""

    values: object
    nulls: np.ndarray
    violations: dict[str, np.ndarray] = field(default_factory=dict)


def _mask(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Boolean Arrow result -> numpy bool with nulls as False."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=np.bool_)


def _nulls(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_)


def key_type_compatible(arrow_type: pa.DataType, key_type: KeyType) -> bool:
    if key_type == KeyType.INT64:
        return pa.types.is_integer(arrow_type)
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def feature_type_compatible(arrow_type: pa.DataType, spec: FeatureSpec) -> bool:
    t = arrow_type
    if spec.dtype == DType.INT64:
        return pa.types.is_integer(t) or pa.types.is_floating(t)
    if spec.dtype in (DType.DOUBLE, DType.FLOAT):
        return pa.types.is_floating(t) or pa.types.is_integer(t)
    if spec.dtype == DType.BOOL:
        return pa.types.is_boolean(t)
    if spec.dtype == DType.STRING:
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    if spec.dtype == DType.BYTES:
        return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
    if spec.dtype == DType.FLOAT_VECTOR:
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            inner = t.value_type
            return pa.types.is_floating(inner) or pa.types.is_integer(inner)
        return False
    return False


def entity_key_column(array: pa.ChunkedArray, key_type: KeyType) -> ColumnValues:
    nulls = _nulls(array)
    violations = {"entity_key_null": nulls}
    if key_type == KeyType.INT64:
        if pa.types.is_unsigned_integer(array.type) and array.type.bit_width == 64:
            violations["entity_key_out_of_range"] = _mask(pc.greater(array, pa.scalar(INT64_MAX, pa.uint64())))
            array = pc.cast(array, pa.int64(), safe=False)
        values = pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        return ColumnValues(values, nulls, violations)
    violations["entity_key_too_long"] = _mask(pc.greater(pc.binary_length(array), MAX_KEY_STRING_BYTES))
    values = array.to_pylist()
    # One spelling per key: "é" composed and decomposed must not become two entities.
    violations["entity_key_not_nfc"] = np.fromiter(
        (v is not None and not unicodedata.is_normalized("NFC", v) for v in values), dtype=np.bool_, count=len(values)
    )
    return ColumnValues(values, nulls, violations)


def event_time_column(array: pa.ChunkedArray) -> ColumnValues:
    """UTC epoch microseconds; the caller checks the type is a tz-aware timestamp."""
    nulls = _nulls(array)
    micros = pc.cast(pc.cast(array, pa.timestamp("us", tz="UTC"), safe=False), pa.int64())
    values = pc.fill_null(micros, 0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return ColumnValues(values, nulls, {"timestamp_null": nulls, "timestamp_before_epoch": (values < 0) & ~nulls})


def feature_column(array: pa.ChunkedArray, spec: FeatureSpec) -> ColumnValues:
    """Dense values for one feature; rows violating the feature's rules are flagged, not dropped."""
    nulls = _nulls(array)
    violations: dict[str, np.ndarray] = {}
    if not spec.nullable:
        violations["null_in_non_nullable"] = nulls
    dtype = spec.dtype
    if dtype == DType.INT64:
        if pa.types.is_floating(array.type):
            floats = pc.fill_null(pc.cast(array, pa.float64()), 0.0).to_numpy(zero_copy_only=False)
            nan = np.isnan(floats) & ~nulls
            with np.errstate(invalid="ignore"):
                not_integral = ~nan & ~nulls & ((np.floor(floats) != floats) | (np.abs(floats) >= 2.0**63))
            violations["nan_in_int_column"] = nan
            violations["not_integral"] = not_integral
            safe = np.where(nan | not_integral | nulls, 0.0, floats)
            return ColumnValues(safe.astype(np.int64), nulls, violations)
        if pa.types.is_unsigned_integer(array.type) and array.type.bit_width == 64:
            violations["int_out_of_range"] = _mask(pc.greater(array, pa.scalar(INT64_MAX, pa.uint64())))
            array = pc.cast(array, pa.int64(), safe=False)
        values = pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        return ColumnValues(values, nulls, violations)
    if dtype in (DType.DOUBLE, DType.FLOAT):
        target = pa.float64() if dtype == DType.DOUBLE else pa.float32()
        values = pc.fill_null(pc.cast(array, target, safe=False), 0.0).to_numpy(zero_copy_only=False)
        if not spec.allow_nan:
            violations["nan_or_inf_not_allowed"] = ~np.isfinite(values) & ~nulls
        return ColumnValues(values, nulls, violations)
    if dtype == DType.BOOL:
        values = pc.fill_null(array, False).to_numpy(zero_copy_only=False).astype(np.bool_, copy=False)
        return ColumnValues(values, nulls, violations)
    if dtype in (DType.STRING, DType.BYTES):
        items = array.to_pylist()
        if dtype == DType.STRING:
            items = ["" if v is None else v for v in items]
        else:
            items = [b"" if v is None else v for v in items]
        return ColumnValues(items, nulls, violations)
    # float vectors
    dim = spec.vector_dim
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
    wrong_dim = (lengths != dim) & ~nulls
    violations["vector_dim_mismatch"] = wrong_dim
    good = ~nulls & ~wrong_dim
    vectors = np.zeros((len(nulls), dim), dtype=np.float32)
    if good.any():
        chosen = pc.filter(array, pa.array(good))
        flat = pc.list_flatten(chosen)
        inner_nulls = np.zeros(len(nulls), dtype=np.bool_)
        if flat.null_count:
            per_row = np.add.reduceat(_nulls(flat).astype(np.int64), np.arange(0, len(flat), dim)) if dim else np.zeros(0)
            inner_nulls[np.flatnonzero(good)] = per_row > 0
            flat = pc.fill_null(flat, 0.0)
        violations["null_inside_vector"] = inner_nulls
        flat_np = pc.cast(flat, pa.float32()).to_numpy(zero_copy_only=False)
        vectors[good] = flat_np.reshape(-1, dim) if dim else np.zeros((int(good.sum()), 0), dtype=np.float32)
        if not spec.allow_nan:
            violations["nan_or_inf_not_allowed"] = ~np.isfinite(vectors).all(axis=1) & good
    return ColumnValues(vectors, nulls, violations)
