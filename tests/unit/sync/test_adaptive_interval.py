"""The adaptive sync interval: volatile groups are synced as often as their bounds allow, quiet ones back off."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fsd.registry.definitions import load_text
from fsd.sync.scheduler import next_adaptive_interval


@given(current=st.floats(1, 10_000), changed=st.integers(0, 1000), low=st.floats(1, 100), span=st.floats(0, 10_000),
       max_age=st.floats(0, 20_000), size=st.integers(0, 5000))
def test_the_next_interval_stays_within_the_bounds_and_half_the_max_age(current, changed, low, span, max_age, size) -> None:  # type: ignore[no-untyped-def]
    high = low + span
    size = max(size, changed) if size else 0
    got = next_adaptive_interval(current, changed, low, high, max_age, group_values=size)
    assert low <= got <= high
    if max_age:
        assert got <= max(low, max_age / 2)
    if low <= current <= high and (not max_age or current <= max_age / 2):
        assert current / 2 - 1e-9 <= got <= current * 2 + 1e-9  # one run moves it at most 2x


def test_the_share_of_changed_values_sets_the_pace() -> None:
    # A quarter of a 500-entity group changed since the last run: as often as allowed.
    assert next_adaptive_interval(120, 125, 60, 3600, group_values=500) == 60
    # One value in 500 (0.2 %) a minute: back off towards ~2 % a run, 2x at a time.
    assert next_adaptive_interval(60, 1, 60, 3600, group_values=500) == 120
    # 2 % changed: the pace is right, keep it.
    assert next_adaptive_interval(600, 10, 60, 3600, group_values=500) == 600


def test_changes_halve_and_quiet_runs_double_the_interval() -> None:
    assert next_adaptive_interval(600, 5, 60, 3600) == 300
    assert next_adaptive_interval(600, 0, 60, 3600) == 1200
    assert next_adaptive_interval(60, 5, 60, 3600) == 60 and next_adaptive_interval(3600, 0, 60, 3600) == 3600
    assert next_adaptive_interval(3600, 0, 60, 86_400, max_age=1800) == 900  # never slower than half the max age


def test_yaml_declares_an_adaptive_interval_with_bounds() -> None:
    [group] = load_text("""
feature_groups:
  - name: g
    entity_keys: [{name: id, type: int64}]
    sync_interval: adaptive
    sync_bounds: {min: 30s, max: 2h}
    features: [{name: x, dtype: double}]
""")
    assert (group.sync_adaptive, group.sync_min_seconds, group.sync_max_seconds) == (True, 30, 7200)
    [default] = load_text("""
feature_groups:
  - name: g
    entity_keys: [{name: id, type: int64}]
    sync_interval: adaptive
    features: [{name: x, dtype: double}]
""")
    assert (default.sync_min_seconds, default.sync_max_seconds) == (60, 3600)
