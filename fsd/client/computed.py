"""Training values of computed features: what `get_historical_features` adds for features with an aggregation,
from the group's offline event log (fsd.aggregation.offline), in the same table as precomputed features."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from fsd.aggregation.event_log import EventLog
from fsd.aggregation.offline import ComputedFeature, compute
from fsd.domain import GroupInfo, VersionInfo
from fsd.offline.partitioned import DatasetSummary
from fsd.offline.retrieval import FeatureVersion, check_entity_rows, feature_columns, status_column
from fsd.offline.store import OfflineStore
from fsd.rows.columns import scalar_arrow_type

def is_computed(version: VersionInfo) -> bool:
    return version.spec.aggregation is not None


def historical_with_computed(store: OfflineStore, entity_rows: pa.Table, resolved: Sequence[tuple[FeatureVersion, VersionInfo]],
                             groups: dict[str, GroupInfo], precomputed: pa.Table | None, *, as_of_micros: int | None, with_status: bool,
                             engine: str) -> pa.Table:
    """The point-in-time table with every requested feature in request order: precomputed ones from `precomputed`
    (the named engine's table for them), computed ones folded from the event log at each row's event_timestamp —
    the same fold whichever engine joins the precomputed ones, so every engine gives the same computed values."""
    check_entity_rows(entity_rows, "event_timestamp")
    names = feature_columns(entity_rows.column_names, [fv for fv, _ in resolved])
    by_group: dict[str, list[int]] = {}
    for index, (fv, version) in enumerate(resolved):
        if is_computed(version):
            by_group.setdefault(fv.group, []).append(index)
    computed: dict[int, tuple[pa.Array, pa.Array]] = {}
    for group, indices in by_group.items():
        spec = groups[group].spec
        features = [ComputedFeature(names[i], resolved[i][1].spec.aggregation, resolved[i][0].max_age_micros) for i in indices]  # type: ignore[arg-type]
        events = EventLog(store.root, group).read()
        columns = compute(events, entity_rows, [k.name for k in spec.entity_keys], "event_timestamp", features,
                          [name for name, _ in spec.event_columns], as_of_micros=as_of_micros)
        for i in indices:
            column = columns[names[i]]
            arrow_type = scalar_arrow_type(resolved[i][1].spec.dtype)
            values = column.values.cast(arrow_type) if isinstance(column.values, pa.Array) else pa.array(column.values, arrow_type)
            computed[i] = (values, status_column(column.status))
    out = entity_rows
    pre_names = iter([c for c in (precomputed.column_names[entity_rows.num_columns:] if precomputed is not None else []) if not c.endswith(":status")])
    for index, name in enumerate(names):
        if index in computed:
            values, status = computed[index]
        else:
            source = next(pre_names)
            values = precomputed[source]  # type: ignore[index]
            status = precomputed[f"{source}:status"] if with_status else None  # type: ignore[index]
        out = out.append_column(name, values)
        if with_status:
            out = out.append_column(f"{name}:status", status)
    return out


def summary_of(table: pa.Table, entity_columns: int) -> DatasetSummary:
    """The dataset manifest's figures of a finished training table: rows, time range, each feature's statuses."""
    summary = DatasetSummary(rows=table.num_rows)
    summary.add_times(table["event_timestamp"].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False))
    names = {"PRESENT": 1, "NOT_FOUND": 2, "STALE": 3}
    for column in table.column_names[entity_columns:]:
        if column.endswith(":status"):
            codes = np.asarray([names[s] for s in table[column].to_pylist()], dtype=np.int64)
            summary.status_counts[column[: -len(":status")]] = np.bincount(codes, minlength=4)
    return summary


__all__ = ["historical_with_computed", "is_computed", "summary_of"]
