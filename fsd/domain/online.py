"""What a GetFeatures call returns: per requested feature, its values with status, version and event time."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fsd.domain.types import ValueStatus

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class GetRequest:
    """A GetFeatures request as the read path takes it. `features_key` is the refs in wire form (the key request
    plans are memoised under, so a repeated request shape never re-parses its refs); int64 key columns are packed
    little-endian bytes, string key columns lists of str."""

    features_key: bytes
    manifest: str
    columns: list[tuple[str, bytes | list[str]]]


@dataclass(frozen=True, slots=True)
class FeatureValues:
    """One served column: values are placeholders (0, "", b"") wherever is_null or status is not PRESENT/STALE."""

    ref: str
    group: str
    feature: str
    version: int
    values: object  # ndarray for fixed-width types (2-D for vectors), list for string/bytes
    is_null: np.ndarray
    statuses: np.ndarray
    event_time_micros: np.ndarray

    def status_names(self) -> list[str]:
        return [ValueStatus(int(s)).name if s else "UNSPECIFIED" for s in self.statuses]

    def has_value(self) -> np.ndarray:
        """True where a value was served (PRESENT or STALE, and not null)."""
        return ((self.statuses == ValueStatus.PRESENT) | (self.statuses == ValueStatus.STALE)) & ~self.is_null


INCLUDE_CHOICES = ("status", "version", "event_time")


@dataclass(frozen=True, slots=True)
class OnlineFeatures:
    """What GetFeatures served: per requested feature its values with status, version and event time, in the order
    of the entity rows asked for (`entities`, the key columns as sent)."""

    entity_count: int
    served_at_micros: int
    features: dict[str, FeatureValues]
    manifest: str = ""
    registry_epoch: int = 0  # the registry state every value was resolved against
    entities: dict[str, list[object]] = field(default_factory=dict)

    def __getitem__(self, ref: str) -> FeatureValues:
        """By column name ("group:feature"), or by the ref as requested ("group:feature@N" finds the column that
        served version N)."""
        found = self.features.get(ref)
        if found is not None:
            return found
        name, at, version = ref.rpartition("@")
        if at and version.isdigit():
            for values in self.features.values():
                if f"{values.group}:{values.feature}" == name and values.version == int(version):
                    return values
        raise KeyError(ref)

    def to_arrow(self, include: tuple[str, ...] | list[str] = ("status",)) -> pa.Table:
        """The entity key columns first, then one column per feature (null unless a value was served: PRESENT or
        STALE and not null), and per feature the `include`d extras: `<ref>:status` (PRESENT, NOT_FOUND, STALE,
        BLOCKED), `<ref>:version`, `<ref>:event_time` (UTC)."""
        import pyarrow as pa

        unknown = [i for i in include if i not in INCLUDE_CHOICES]
        if unknown:
            raise ValueError(f"include: {unknown[0]!r} is not one of {', '.join(INCLUDE_CHOICES)}")
        columns: dict[str, pa.Array] = {}
        for name, values in self.entities.items():
            columns[name] = pa.array(values, type=pa.string() if values and isinstance(values[0], str) else pa.int64())
        for ref, f in self.features.items():
            mask = ~f.has_value()
            if isinstance(f.values, np.ndarray) and f.values.ndim == 2:
                items = [None if m else row.tolist() for row, m in zip(f.values, mask)]
                columns[ref] = pa.array(items, type=pa.list_(pa.float32()))
            elif isinstance(f.values, np.ndarray):
                columns[ref] = pa.array(f.values, mask=mask)
            else:
                columns[ref] = pa.array([None if m else v for v, m in zip(f.values, mask)])  # type: ignore[call-overload]
            if "status" in include:
                columns[f"{ref}:status"] = pa.array(f.status_names(), type=pa.string())
            if "version" in include:
                columns[f"{ref}:version"] = pa.array(np.full(self.entity_count, f.version, dtype=np.int64))
            if "event_time" in include:
                columns[f"{ref}:event_time"] = pa.array(f.event_time_micros, type=pa.timestamp("us", tz="UTC"), mask=f.event_time_micros <= 0)
        return pa.table(columns)

    def to_pandas(self, include: tuple[str, ...] | list[str] = ("status",)) -> object:
        """to_arrow() as a pandas DataFrame (pandas is the optional extra fsd[pandas]). Integer and boolean columns
        use pandas' nullable dtypes (Int64, boolean), so an int64 feature stays int64 when some rows are NOT_FOUND
        instead of turning into float64 (which silently changes large ids and counts a model compares)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install 'fsd[pandas]'") from None
        import pyarrow as pa

        nullable = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int32Dtype(), pa.bool_(): pd.BooleanDtype()}
        return self.to_arrow(include).to_pandas(types_mapper=nullable.get)

    def to_dict(self, include: tuple[str, ...] | list[str] = ("status",)) -> dict[str, list[object]]:
        """to_arrow() as {column: list of values} (Feast's to_dict shape)."""
        return self.to_arrow(include).to_pydict()
