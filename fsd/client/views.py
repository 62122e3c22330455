"""Text views of fsd's records for people: tables of served values, plans, sync runs, status. Used by the CLI and
the demo; pure functions of domain values (no client, no I/O)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from fsd.domain import ApplyResult, OnlineFeatures, StatusReport, SyncRun, ValidationResult
from fsd.domain.durations import format_duration
from fsd.client.tables import render

_ACTION_MARK = {"create": "+", "compatible_expansion": "+", "new_version": "~>", "metadata_update": "~", "unchanged": " "}


def fmt_time(micros: int | None) -> str:
    if not micros or micros <= 0:
        return "-"
    return datetime.fromtimestamp(micros / 1e6, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float | None, never: str = "never") -> str:
    if seconds is None or seconds < 0:
        return never
    return format_duration(int(seconds)) if seconds >= 1 else f"{seconds:.1f}s"


def percent(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2%}"


def changes_table(result: ApplyResult) -> str:
    rows = [
        (_ACTION_MARK.get(c.action, "?"), c.group, c.feature or "(group)", c.action, f"v{c.version}" if c.version else "", c.detail)
        for c in result.changes
    ]
    return render(["", "group", "feature", "action", "version", "detail"], rows)


def _item(values: object, i: int) -> object:
    item = values[i]  # type: ignore[index]
    return item.tolist() if hasattr(item, "tolist") else item


def features_table(entities: Mapping[str, Sequence[object]], result: OnlineFeatures) -> str:
    rows = []
    for i in range(result.entity_count):
        key = ", ".join(f"{k}={v[i]}" for k, v in entities.items())
        for ref, f in result.features.items():
            status = f.status_names()[i]
            value = None if f.is_null[i] or status in ("NOT_FOUND", "BLOCKED") else _item(f.values, i)
            rows.append((key, ref, f"v{f.version}", value, status, fmt_time(int(f.event_time_micros[i]))))
    return render(["entity", "feature", "version", "value", "status", "event time (UTC)"], rows)


def runs_table(runs: Sequence[SyncRun]) -> str:
    rows = []
    for r in runs:
        took = (r.ended_micros - r.started_micros) / 1e6
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(r.reason_counts.items())) or "-"
        delay = f"{r.sync_delay_micros / 1e6:.1f}s" if r.outcome == "success" and r.sync_delay_micros else "-"
        rows.append((r.id, r.group, fmt_time(r.started_micros), f"{took:.2f}s", r.outcome + (" (forced)" if r.forced else ""),
                     r.rows_read, r.values_written, r.rows_rejected, delay, reasons, r.error[:60]))
    return render(["run", "group", "started (UTC)", "took", "outcome", "rows read", "values written", "rejected", "sync delay",
                   "reasons", "error"], rows)


def status_tables(report: StatusReport, flag: object = None) -> str:
    mark = flag if callable(flag) else (lambda text: text)
    rows = []
    for g in report.groups:
        if g.stale:
            state = mark("STALE (" + "; ".join([*g.breaches, *g.alerts]) + ")")
        elif g.alerts:
            state = mark("FAIL (" + "; ".join(g.alerts) + ")")
        else:
            state = "WARN (" + "; ".join(g.warnings) + ")" if g.warnings else "ok"
        if g.sync_delay_seconds is None:
            delay = "never synced"
        else:
            delay = f"{g.sync_delay_seconds * 1000:.0f}ms" if g.sync_delay_seconds < 1 else f"{g.sync_delay_seconds:.1f}s"
        rows.append((g.group, age(g.freshness_lag_seconds, "no data"), age(g.seconds_since_sync, "never synced"), g.missed_refreshes, delay,
                     age(g.max_age_seconds or None, "-"), age(g.sync_interval_seconds or None, "-"), state))
    lines = [f"as of {fmt_time(report.now_micros)} UTC",
             render(["group", "freshness lag", "since sync", "missed refreshes", "sync delay", "max age", "sync every", "state"], rows)]
    feature_rows = []
    for g in report.groups:
        for f in g.features:
            stale = f"{f.stale_entity_ratio:.1%} of {f.sampled_values}" if f.stale_entity_ratio is not None else "not measured"
            feature_rows.append((f"{g.group}:{f.feature}@{f.version}", f.state, stale, mark("BLOCKED") if f.blocked else "-",
                                 percent(f.last_consistency), f"{f.psi:.3f}" if f.psi is not None else "not measured"))
    lines += ["", render(["feature version", "state", "stale entities (sampled)", "blocked", "last consistency", "psi"], feature_rows)]
    return "\n".join(lines)


def validation_table(result: ValidationResult) -> str:
    rows = []
    for f in result.features:
        m = f.mismatches
        psi = (f"{f.psi:.3f}" + (" SKEWED" if f.skewed else "")) if f.psi is not None else "-"
        rows.append((f"{result.group}:{f.feature}@{f.version}", f.sampled, percent(f.consistency), m.value_differs, m.version_differs,
                     m.missing_online, m.stale, m.entity_key_drift, psi))
    return render(["feature version", "sampled", "consistency", "value differs", "version differs", "missing online", "stale",
                   "entity-key drift", "psi (>0.2 = skew)"], rows)
