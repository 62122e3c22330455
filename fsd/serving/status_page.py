"""The on-call status page: one server-rendered, read-only HTML page on the metrics port (`/`) that reloads itself
every 30 s. Each group's health (red: breaches, the default policy's alerts, never synced, blocked versions,
failing validations, open incidents; amber: warnings), charts of the last hours (freshness lag, sync outcomes,
serving QPS and p99 from the daemon's own metrics, inline SVG), manifests and whether the versions they pin still
serve, versions with stale ratio and PSI, sync runs, incidents and lineage. No JavaScript; every value escaped;
laid out to fit 1280 px."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from fsd.domain import Deployment, GroupStatus, Incident, RegistrySnapshot, StatusReport, SyncRun
from fsd.client.views import age, fmt_time, percent
from fsd.monitor.freshness import GroupSignals
from fsd.monitor.history import Sample
from fsd.monitor.ledger import ValidationLedger
from fsd.monitor.status import status_report
from fsd.registry.registry import Registry
from fsd.serving.status_charts import line_chart, sync_chart

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1b1f23;background:#fafbfc}
main{max-width:1240px;margin:0 auto;padding:1rem 1.2rem}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:1.4rem 0 .4rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;font-size:.84rem;margin:.3rem 0;width:100%}
td,th{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f0f3f6}.bad{color:#b42318;font-weight:600}.warn{color:#9a6700;font-weight:600}.ok{color:#116329}
.muted{color:#57606a}.mono{font-family:ui-monospace,monospace;font-size:.8rem;overflow-wrap:anywhere}
.pill{display:inline-block;padding:0 .45rem;border-radius:.7rem;font-weight:600;font-size:.78rem;color:#fff}
.pill.fail{background:#cf222e}.pill.warn{background:#bf8700}.pill.ok{background:#1a7f37}
.summary{display:flex;gap:.6rem;flex-wrap:wrap;margin:.6rem 0}.summary div{padding:.4rem .7rem;border-radius:.4rem;border:1px solid #d0d7de;background:#fff}
.charts{display:flex;flex-wrap:wrap;gap:.8rem}.chartbox{background:#fff;border:1px solid #d0d7de;border-radius:.4rem;padding:.3rem;width:390px}
.legend{font-size:.72rem;display:flex;flex-wrap:wrap;gap:.4rem;padding:0 .3rem}.key{border-left:.7rem solid;padding-left:.25rem}
"""
REFRESH_SECONDS = 30
HEALTH_TEXT = {"fail": "FAIL", "warn": "WARN", "ok": "OK"}


@dataclass(frozen=True, slots=True)
class PageData:
    deployment: Deployment
    snapshot: RegistrySnapshot
    status: StatusReport
    runs: Sequence[SyncRun]
    incidents: Sequence[Incident]
    validations: dict[int, tuple[float | None, int, int] | None]  # slot -> (consistency, sampled, at)
    history: Sequence[Sample] = ()


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _e(value: object) -> str:
    return escape(str(value))


def _pill(health: str) -> str:
    return f'<span class="pill {health}">{HEALTH_TEXT[health]}</span>'


def _group_health(s: GroupStatus | None, incidents: int) -> tuple[str, list[str]]:
    """(fail | warn | ok, reasons): the report's health, red too while the group has open incidents."""
    if s is None:
        return "warn", ["not measured yet"]
    reasons = [*(["marked STALE"] if s.stale else []), *s.breaches, *s.alerts]
    if incidents:
        reasons.append(f"{incidents} open incident{'s' if incidents > 1 else ''}")
    if reasons:
        return "fail", reasons
    return s.health, list(s.warnings)


def _groups(data: PageData) -> tuple[list[list[str]], dict[str, int]]:
    by_group = {g.group: g for g in data.status.groups}
    open_by_group: dict[str, int] = {}
    for incident in data.incidents:
        open_by_group[incident.group] = open_by_group.get(incident.group, 0) + 1
    rows, counts = [], {"fail": 0, "warn": 0, "ok": 0}
    for name, g in sorted(data.snapshot.groups.items()):
        s = by_group.get(name)
        health, reasons = _group_health(s, open_by_group.get(name, 0))
        counts[health] += 1
        why = f'<div class="{"bad" if health == "fail" else "warn"}">{_e("; ".join(reasons))}</div>' if reasons else ""
        rows.append([
            f"{_pill(health)}{why}", f'<span class="mono">{_e(name)}</span>', _e(", ".join(k.name for k in g.spec.entity_keys)),
            _e(g.spec.owner or "-"), _e(age(s.freshness_lag_seconds, "no data") if s else "-"),
            _e(age(s.seconds_since_sync, "never synced") if s else "-"), _e(s.missed_refreshes if s else "-"),
            _e(age(g.spec.max_age_seconds or None, "-")), _e(age(g.spec.sync_interval_seconds or None, "-")),
        ])
    return rows, counts


def _versions(data: PageData) -> list[list[str]]:
    figures = {(g.group, f.feature, f.version): f for g in data.status.groups for f in g.features}
    rows = []
    for name, g in sorted(data.snapshot.groups.items()):
        for feature, infos in sorted(g.versions.items()):
            for v in infos:
                last = data.validations.get(v.slot)
                checked = "never validated" if last is None else (
                    f"{percent(last[0])} of {last[1]} at {fmt_time(last[2])}" if last[1] else f"nothing compared, at {fmt_time(last[2])}")
                low = last is not None and last[1] and last[0] is not None and last[0] < (g.spec.policy.min_consistency or 1.0)
                f = figures.get((name, feature, v.version))
                stale = "not measured" if f is None or f.stale_entity_ratio is None else f"{f.stale_entity_ratio:.1%} of {f.sampled_values}"
                psi = "not measured" if f is None or f.psi is None else f"{f.psi:.3f}"
                blocked = '<span class="bad">BLOCKED</span>' if v.slot in data.snapshot.blocked else "-"
                state = f'<span class="{"ok" if v.state.name == "SERVING" else "muted"}">{_e(v.state.name)}</span>'
                rows.append([f'<span class="mono">{_e(f"{name}:{feature}@{v.version}")}</span>', state, _e(v.spec.dtype.name.lower()),
                             f'<span class="mono">{_e(v.behaviour_hash[:12])}</span>', _e(fmt_time(v.first_published_micros)), blocked,
                             f'<span class="{"bad" if low else ""}">{_e(checked)}</span>', _e(stale), _e(psi)])
    return rows


def _manifests(data: PageData) -> list[list[str]]:
    rows = []
    for name, versions in sorted(data.snapshot.manifests.items()):
        for m in versions:
            pins = []
            for p in m.features:
                info = data.snapshot.groups.get(p.group)
                found = next((v for v in (info.versions.get(p.feature, ()) if info else ()) if v.version == p.version), None)
                state = found.state.name if found else "DELETED"
                css = "ok" if state == "SERVING" else ("warn" if state in ("PENDING", "DEPRECATED") else "bad")
                pins.append(f'<span class="mono">{_e(p.ref)}</span> <span class="{css}">{_e(state)}</span>')
            rows.append([f'<span class="mono">{_e(m.ref)}</span>', _e(fmt_time(m.created_micros)), _e(m.created_by or "-"), "<br>".join(pins)])
    return rows


def _charts(data: PageData) -> str:
    if not data.history:
        return '<p class="muted">charts: not measured yet (the daemon samples its own metrics every minute)</p>'
    start, end = data.history[0].at_micros, data.status.now_micros
    lag: dict[str, list[tuple[int, float]]] = {}
    for sample in data.history:
        for group, seconds in sample.lag_seconds.items():
            lag.setdefault(group, []).append((sample.at_micros, seconds))
    qps = {"GetFeatures": [(s.at_micros, s.qps) for s in data.history if s.qps is not None]}
    p99 = {"GetFeatures p99": [(s.at_micros, s.p99_seconds) for s in data.history if s.p99_seconds is not None]}
    return ('<div class="charts">' + line_chart("freshness lag by group", lag, "s", start, end) + sync_chart(data.runs, start, end)
            + line_chart("serving QPS", qps, "/s", start, end) + line_chart("serving p99 latency", p99, "s", start, end) + "</div>")


def render(data: PageData) -> str:
    d, snapshot, status = data.deployment, data.snapshot, data.status
    groups, counts = _groups(data)
    lineage = []
    for name, g in sorted(snapshot.groups.items()):
        for feature, infos in sorted(g.versions.items()):
            for v in infos:
                lineage.append([_e(g.spec.source or "(no source)"), _e(v.spec.transformation or "(identity)"),
                                f'<span class="mono">{_e(f"{name}:{feature}@{v.version}")}</span>',
                                f'<span class="mono">{_e(f"{d.offline_root}/{name}/{feature}/v{v.version}/")}</span>',
                                _e(f"{d.store_engine}, rows of group {name}, slot {v.slot}")])
    runs = [[_e(r.id), _e(r.group), _e(fmt_time(r.started_micros)),
             f'<span class="{"ok" if r.outcome == "success" else "bad"}">{_e(r.outcome + (" (forced)" if r.forced else ""))}</span>',
             _e(r.rows_read), _e(r.values_written), _e(r.rows_rejected), _e(", ".join(f"{k}={v}" for k, v in sorted(r.reason_counts.items())) or "-"),
             _e(r.error[:200] or "-")] for r in data.runs]
    incidents = [[_e(i.id), _e(fmt_time(i.opened_micros)), _e(i.group), _e(i.kind), _e(i.publish_id), _e(i.detail[:300])] for i in data.incidents]
    overall = "fail" if counts["fail"] or data.incidents else ("warn" if counts["warn"] else "ok")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>{HEALTH_TEXT[overall]} · fsd status</title><style>{_STYLE}</style></head><body><main>
<h1>fsd status {_pill(overall)}</h1>
<p class="muted">as of {_e(fmt_time(status.now_micros))} UTC (reloads every {REFRESH_SECONDS} s) · fsd {_e(d.fsd_version)} · {_e(d.store_engine)} online store ·
{_e(d.registry_kind)} registry (epoch {_e(snapshot.epoch)}, revision {_e(snapshot.revision)}) · codec {"native" if d.codec_native else "pure-Python"} ·
offline store <span class="mono">{_e(d.offline_root)}</span></p>
<div class="summary"><div>{_pill("fail")} {counts["fail"]} group(s)</div><div>{_pill("warn")} {counts["warn"]}</div><div>{_pill("ok")} {counts["ok"]}</div>
<div>{len(data.incidents)} open incident(s)</div></div>
<h2 id="groups">Feature groups</h2>
{_table(["health", "group", "entity keys", "owner", "freshness lag", "since sync", "missed refreshes", "max age", "sync every"], groups, "no feature groups yet")}
<h2 id="charts">Last hours</h2>
{_charts(data)}
<h2 id="manifests">Manifests and the versions they pin</h2>
{_table(["manifest", "created (UTC)", "by", "pins (state now)"], _manifests(data), "no manifests yet")}
<h2 id="versions">Feature versions</h2>
{_table(["version", "state", "dtype", "definition hash", "first published", "blocked", "latest validation", "stale (sampled)", "PSI"], _versions(data), "no feature versions yet")}
<h2 id="syncs">Last sync runs</h2>
{_table(["run", "group", "started (UTC)", "outcome", "rows read", "values written", "rejected", "reasons", "error"], runs, "no sync runs yet")}
<h2 id="incidents">Open incidents</h2>
{_table(["id", "opened (UTC)", "group", "kind", "publish", "detail"], incidents, "no open incidents")}
<h2 id="lineage">Lineage</h2>
{_table(["source", "transformation", "version", "offline dataset", "online"], lineage, "nothing registered")}
</main></body></html>
"""


def compose(deployment: Deployment, registry: Registry, signals: dict[str, GroupSignals], ledger: ValidationLedger, now_micros: int,
            history: Sequence[Sample] = ()) -> str:
    """The page as of now: the registry's snapshot and operations record, the monitor's freshness and validations,
    and the daemon's own metric history for the charts."""
    snapshot = registry.snapshot()
    slots = [v.slot for g in snapshot.groups.values() for vs in g.versions.values() for v in vs]
    ops = registry.operations
    return render(PageData(
        deployment, snapshot, status_report(snapshot, signals, ledger, now_micros), ops.sync_runs("", 50), ops.incidents(False),
        {slot: ops.last_validation(slot) for slot in slots}, tuple(history),
    ))
