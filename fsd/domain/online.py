"""What a GetFeatures call returns: per requested feature, its values with status, version and event time."""
from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class OnlineFeatures:
    entity_count: int
    served_at_micros: int
    features: dict[str, FeatureValues]
    manifest: str = ""
    registry_epoch: int = 0  # the registry state every value was resolved against

    def __getitem__(self, ref: str) -> FeatureValues:
        return self.features[ref]

    def to_arrow(self) -> pa.Table:
        """One value column per ref (null unless a value is PRESENT or STALE and not null), plus ref + ':status'."""
        import pyarrow as pa

        columns: dict[str, pa.Array] = {}
        for ref, f in self.features.items():
            mask = ~f.has_value()
            if isinstance(f.values, np.ndarray) and f.values.ndim == 2:
                items = [None if m else row.tolist() for row, m in zip(f.values, mask)]
                columns[ref] = pa.array(items, type=pa.list_(pa.float32()))
            elif isinstance(f.values, np.ndarray):
                columns[ref] = pa.array(f.values, mask=mask)
            else:
                columns[ref] = pa.array([None if m else v for v, m in zip(f.values, mask)])  # type: ignore[call-overload]
            columns[f"{ref}:status"] = pa.array(f.status_names(), type=pa.string())
        return pa.table(columns)
