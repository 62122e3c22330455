"""The on-call status page: one server-rendered, read-only HTML page on the metrics port (`/`). Feature groups with
their versions and states, freshness signals, the last sync runs, open incidents, the latest validation per
version, and each version's lineage (source -> version -> offline dataset -> online). No JavaScript; every value
is escaped."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from fsd.domain import Deployment, Incident, RegistrySnapshot, StatusReport, SyncRun
from fsd.client.views import age, fmt_time, percent
from fsd.monitor.freshness import GroupSignals
from fsd.monitor.ledger import ValidationLedger
from fsd.monitor.status import status_report
from fsd.registry.registry import Registry

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem;color:#1b1f23;background:#fafbfc}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:1.6rem 0 .4rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;font-size:.86rem;margin:.3rem 0}td,th{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left}
th{background:#f0f3f6}.bad{color:#b42318;font-weight:600}.ok{color:#116329}.muted{color:#57606a}.mono{font-family:ui-monospace,monospace}
"""


@dataclass(frozen=True, slots=True)
class PageData:
    deployment: Deployment
    snapshot: RegistrySnapshot
    status: StatusReport
    runs: Sequence[SyncRun]
    incidents: Sequence[Incident]
    validations: dict[int, tuple[float | None, int, int] | None]  # slot -> (consistency, sampled, at)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _e(value: object) -> str:
    return escape(str(value))


def render(data: PageData) -> str:
    d, snapshot, status = data.deployment, data.snapshot, data.status
    by_group = {g.group: g for g in status.groups}
    groups = []
    for name, g in sorted(snapshot.groups.items()):
        s = by_group.get(name)
        state = '<span class="bad">STALE: ' + _e("; ".join(s.breaches)) + "</span>" if s and s.stale else '<span class="ok">ok</span>'
        groups.append([
            f'<span class="mono">{_e(name)}</span>', _e(", ".join(k.name for k in g.spec.entity_keys)), _e(g.spec.owner or "-"),
            _e(age(s.freshness_lag_seconds, "no data") if s else "-"), _e(age(s.seconds_since_sync, "never synced") if s else "-"),
            _e(s.missed_refreshes if s else "-"), _e(age(g.spec.max_age_seconds or None, "-")), state,
        ])
    versions, lineage = [], []
    for name, g in sorted(snapshot.groups.items()):
        for feature, infos in sorted(g.versions.items()):
            for v in infos:
                last = data.validations.get(v.slot)
                checked = "never validated" if last is None else (
                    f"{percent(last[0])} of {last[1]} at {fmt_time(last[2])}" if last[1] else f"nothing compared, at {fmt_time(last[2])}")
                blocked = '<span class="bad">BLOCKED</span>' if v.slot in snapshot.blocked else "-"
                state = f'<span class="{"ok" if v.state.name == "SERVING" else "muted"}">{_e(v.state.name)}</span>'
                versions.append([f'<span class="mono">{_e(f"{name}:{feature}@{v.version}")}</span>', state, _e(v.spec.dtype.name.lower()),
                                 f'<span class="mono">{_e(v.behaviour_hash[:12])}</span>', _e(fmt_time(v.first_published_micros)), blocked,
                                 _e(checked)])
                lineage.append([_e(g.spec.source or "(no source)"), _e(v.spec.transformation or "(identity)"),
                                f'<span class="mono">{_e(f"{name}:{feature}@{v.version}")}</span>',
                                f'<span class="mono">{_e(f"{d.offline_root}/{name}/{feature}/v{v.version}/")}</span>',
                                _e(f"{d.store_engine}, rows of group {name}, slot {v.slot}")])
    runs = [[_e(r.id), _e(r.group), _e(fmt_time(r.started_micros)),
             f'<span class="{"ok" if r.outcome == "success" else "bad"}">{_e(r.outcome + (" (forced)" if r.forced else ""))}</span>',
             _e(r.rows_read), _e(r.values_written), _e(r.rows_rejected), _e(", ".join(f"{k}={v}" for k, v in sorted(r.reason_counts.items())) or "-"),
             _e(r.error[:200] or "-")] for r in data.runs]
    incidents = [[_e(i.id), _e(fmt_time(i.opened_micros)), _e(i.group), _e(i.kind), _e(i.publish_id), _e(i.detail[:300])] for i in data.incidents]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>fsd status</title><style>{_STYLE}</style></head><body>
<h1>fsd status</h1>
<p class="muted">as of {_e(fmt_time(status.now_micros))} UTC · fsd {_e(d.fsd_version)} · {_e(d.store_engine)} online store ·
{_e(d.registry_kind)} registry (epoch {_e(snapshot.epoch)}, revision {_e(snapshot.revision)}) · codec {"native" if d.codec_native else "pure-Python"} ·
offline store <span class="mono">{_e(d.offline_root)}</span></p>
<h2 id="groups">Feature groups</h2>
{_table(["group", "entity keys", "owner", "freshness lag", "since sync", "missed refreshes", "max age", "state"], groups, "no feature groups yet")}
<h2 id="versions">Feature versions</h2>
{_table(["version", "state", "dtype", "definition hash", "first published", "blocked", "latest validation"], versions, "no feature versions yet")}
<h2 id="syncs">Last sync runs</h2>
{_table(["run", "group", "started (UTC)", "outcome", "rows read", "values written", "rejected", "reasons", "error"], runs, "no sync runs yet")}
<h2 id="incidents">Open incidents</h2>
{_table(["id", "opened (UTC)", "group", "kind", "publish", "detail"], incidents, "no open incidents")}
<h2 id="lineage">Lineage</h2>
{_table(["source", "transformation", "version", "offline dataset", "online"], lineage, "nothing registered")}
</body></html>
"""


def compose(deployment: Deployment, registry: Registry, signals: dict[str, GroupSignals], ledger: ValidationLedger, now_micros: int) -> str:
    """The page as of now: the registry's snapshot and operations record, the monitor's freshness and validations."""
    snapshot = registry.snapshot()
    slots = [v.slot for g in snapshot.groups.values() for vs in g.versions.values() for v in vs]
    ops = registry.operations
    return render(PageData(
        deployment, snapshot, status_report(snapshot, signals, ledger, now_micros), ops.sync_runs("", 20), ops.incidents(False),
        {slot: ops.last_validation(slot) for slot in slots},
    ))
