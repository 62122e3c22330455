"""Offline ingest: validate a wide table (keys, event_timestamp, [created_timestamp], features) against the
versions it writes and split it into one dataset write per feature version. Nothing is written for a table
with bad rows unless skip_bad_rows is set; then only the good rows are."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from fsd.rows import checks
from fsd.domain import FeatureSpec, GroupSpec
from fsd.errors import InvalidArgument
from fsd.offline.store import CREATED_TIMESTAMP, EVENT_TIMESTAMP, VALUE, OfflineStore, WriteResult

_TS = pa.timestamp("us", tz="UTC")


@dataclass(slots=True)
class IngestReport:
    rows: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rejections: list[checks.Rejection] = field(default_factory=list)
    writes: dict[str, tuple[int, WriteResult]] = field(default_factory=dict)  # feature -> (version, result)


def ingest(
    store: OfflineStore,
    table: pa.Table,
    group: GroupSpec,
    targets: Mapping[str, tuple[int, FeatureSpec]],
    *,
    now_micros: int,
    max_future_skew_micros: int = 300 * 1_000_000,
    skip_bad_rows: bool = False,
    kind: str = "ingest",
) -> IngestReport:
    """targets: feature column -> (version, spec of that version), as resolved from the registry by the caller."""
    present = checks.feature_columns(table, group)
    unknown = sorted(set(present) - set(targets))
    if unknown:
        raise InvalidArgument(f"column {unknown[0]!r} is not a feature of group {group.name}", field=unknown[0])
    checks.check_feature_types(table, group, {n: targets[n] for n in present})
    checked = checks.validate_rows(table, group, {n: targets[n][1] for n in present}, now_micros, max_future_skew_micros)
    report = IngestReport(rows=table.num_rows, rejections=checked.rejections)
    report.rows_rejected = int((~checked.valid).sum())
    if report.rows_rejected and not skip_bad_rows:
        shown = "; ".join(f"rows {r.row_start}-{r.row_end - 1}: [{r.rule}] {r.reason}" for r in checked.rejections[:5])
        raise InvalidArgument(f"{report.rows_rejected} bad row(s), nothing written (use --skip-bad-rows to write the rest): {shown}", field="rows")
    keep = pa.array(checked.valid)
    good = table.filter(keep)
    created = good[CREATED_TIMESTAMP] if CREATED_TIMESTAMP in good.column_names else pa.array(np.full(good.num_rows, now_micros), _TS)
    base = {k.name: good[k.name] for k in group.entity_keys}
    base[EVENT_TIMESTAMP] = good[EVENT_TIMESTAMP]
    base[CREATED_TIMESTAMP] = created
    for name in present:
        version, spec = targets[name]
        column = good[name]
        if spec.dtype.name == "INT64":
            column = column.cast(pa.int64())
        elif spec.dtype.name == "DOUBLE":
            column = column.cast(pa.float64())
        elif spec.dtype.name == "FLOAT":
            column = column.cast(pa.float32())
        report.writes[name] = (version, store.write(group.name, name, version, pa.table({**base, VALUE: column}), kind=kind))
    report.rows_written = good.num_rows
    return report
