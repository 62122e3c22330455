"""The monitor's status report: freshness signals, policy flags and the latest checks per serving version."""
from __future__ import annotations

from fsd.domain import FeatureStatus, GroupStatus, RegistrySnapshot, StatusReport, VersionState
from fsd.monitor.ledger import ValidationLedger
from fsd.monitor.freshness import GroupSignals
from fsd.monitor.health import group_findings

_REPORTED = (VersionState.SERVING, VersionState.PENDING)


def status_report(snapshot: RegistrySnapshot, signals: dict[str, GroupSignals], ledger: ValidationLedger, now_micros: int,
                  group: str = "") -> StatusReport:
    """Per group (or the one named) its signals and each SERVING/PENDING version's figures; reads only."""
    if group:
        snapshot.group(group)
    groups = []
    for name, info in sorted(snapshot.groups.items()):
        if group and name != group:
            continue
        s = signals.get(name)
        features = []
        for feature, versions in info.versions.items():
            for v in versions:
                if v.state not in _REPORTED:
                    continue
                sample = s.samples.get(v.slot) if s is not None else None
                consistency, psi = ledger.get(name, feature, v.version)
                features.append(FeatureStatus(
                    feature, v.version, v.state.name, sample.ratio if sample else None, sample.present if sample else 0,
                    v.slot in snapshot.blocked, consistency, psi,
                ))
        alerts, warnings = group_findings(info.spec, s, features)
        groups.append(GroupStatus(
            group=name, sync_interval_seconds=info.spec.sync_interval_seconds, max_age_seconds=info.spec.max_age_seconds,
            stale=name in snapshot.stale_groups,
            newest_event_micros=s.newest_event_micros if s else 0,
            freshness_lag_seconds=s.freshness_lag_seconds if s else None,
            seconds_since_sync=s.seconds_since_sync if s else None,
            missed_refreshes=s.missed_refreshes if s else 0,
            sync_delay_seconds=s.sync_delay_seconds if s else None,
            breaches=tuple(s.breaches) if s else (),
            features=tuple(features), alerts=alerts, warnings=warnings,
        ))
    return StatusReport(now_micros, tuple(groups))
