"""A group's health beyond its explicit policy: the findings that make it red or amber on `fsd status`, the status
page and `fsd status --check`, so that a group nobody wrote a freshness_policy for is still watched.

Why defaults: a policy of zeros checks nothing, and a group that stopped syncing, or never did, showed a green
"ok". Every group with a sync interval or a max age therefore gets thresholds derived from them, used where its
policy leaves one at 0. They only alert: marking values STALE and requesting resyncs stays the explicit policy's
job (fsd.monitor.actions), so no default changes what a model is served.
"""
from __future__ import annotations

from collections.abc import Sequence

from fsd.domain import FeatureStatus, GroupSpec
from fsd.monitor.freshness import GroupSignals

DEFAULT_MAX_MISSED_REFRESHES = 2  # a late run is normal scheduling jitter; two missed intervals are not
OVERDUE_FACTOR = 1.5  # amber once a sync is this many intervals late, before it counts as missed twice


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}".replace(".0", "")
    return f"{seconds:.0f}s"


def group_findings(spec: GroupSpec, signals: GroupSignals | None, features: Sequence[FeatureStatus]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(alerts: red, warnings: amber) for one group, from its latest signals and its versions' figures."""
    alerts: list[str] = []
    warnings: list[str] = []
    policy = spec.policy
    interval = spec.sync_interval_seconds
    if signals is None:
        warnings.append("not measured yet (the monitor has not run since the group appeared)")
    else:
        if signals.newest_event_micros == 0 and signals.seconds_since_sync is None:
            alerts.append("never synced: no value online and no successful sync")
        if interval and not policy.max_missed_refreshes and signals.missed_refreshes >= DEFAULT_MAX_MISSED_REFRESHES:
            alerts.append(f"{signals.missed_refreshes} missed refreshes (sync every {_age(interval)}; default limit "
                          f"{DEFAULT_MAX_MISSED_REFRESHES}, set freshness_policy.max_missed_refreshes)")
        elif interval and signals.seconds_since_sync is not None and signals.seconds_since_sync > OVERDUE_FACTOR * interval \
                and not signals.breaches:
            warnings.append(f"sync overdue: last success {_age(signals.seconds_since_sync)} ago, every {_age(interval)}")
        lag = signals.freshness_lag_seconds
        if spec.max_age_seconds and not policy.max_lag_seconds and lag is not None and lag > spec.max_age_seconds:
            alerts.append(f"freshness lag {_age(lag)} > max age {_age(spec.max_age_seconds)}: every online value is stale "
                          "(default limit, set freshness_policy.max_lag)")
    for f in features:
        name = f"{spec.name}:{f.feature}@{f.version}"
        if f.blocked:
            alerts.append(f"{name} is BLOCKED")
        if f.last_consistency is None:
            continue
        limit = policy.min_consistency or 1.0
        if f.last_consistency < limit and f.state == "SERVING":
            alerts.append(f"{name}: last validation {f.last_consistency:.1%} consistent < {limit:.0%}")
        elif f.last_consistency < 1.0:  # within the policy, or a PENDING version not served yet
            warnings.append(f"{name}: last validation {f.last_consistency:.1%} consistent (policy minimum {limit:.0%})")
    return tuple(alerts), tuple(warnings)


__all__ = ["DEFAULT_MAX_MISSED_REFRESHES", "group_findings"]
