"""The publish rules as code: one function per README rule id, and the row merge obeys their ordering rule."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsd.codec import _rows_py, _values_py
from fsd.domain import PublishMode
from fsd.rows import rules

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")


def test_every_readme_rule_has_its_function_and_reason_code() -> None:
    table = README.split("## Publish rules", 1)[1].split("\n\n", 2)[2]
    ids = re.findall(r"^\| `([a-z_]+)` \| (?:`([A-Z_]+)`|—|`INVALID_ARGUMENT`)", table, flags=re.M)
    assert [i for i, _ in ids] == list(rules.RULE_IDS)
    for rule_id, reason in ids:
        assert callable(getattr(rules, rule_id)), rule_id
        if reason and reason != "INVALID_ARGUMENT":
            assert getattr(rules, reason) == reason


stamps = st.tuples(st.integers(-5, 5), st.integers(-5, 5))


@given(offered=stamps, online=st.one_of(st.none(), stamps))
def test_newer_wins_is_what_the_row_merge_does(offered, online) -> None:  # type: ignore[no-untyped-def]
    from fsd import _native

    def value(stamp: tuple[int, int], marker: int) -> bytes:
        return _values_py.encode_values(1, np.array([marker], np.int64), np.array([False]), np.array([stamp[0]], np.int64),
                                        np.array([stamp[1]], np.int64))[0]

    existing = [None if online is None else _rows_py.build_row({7: value(online, 1)})]
    for merge in (_rows_py.merge_rows, _native.merge_rows):
        rows, written, skipped = merge(existing, [7], [[value(offered, 2)]])
        assert (written == 1) == rules.newer_wins(offered, online)
        assert written + skipped == 1


@given(st.lists(st.integers(0, 100), max_size=20), st.integers(1, 60))
def test_late_correction_keeps_exactly_the_serving_window(ages, max_age) -> None:  # type: ignore[no-untyped-def]
    now = 1_000
    times = np.array([now - a for a in ages], dtype=np.int64)
    decision = rules.late_correction(PublishMode.CORRECTION, times, now, max_age)
    outside = [a > max_age for a in ages]
    assert decision.count == sum(outside)
    assert decision.keep is not None and decision.keep.tolist() == [not o for o in outside]
    assert rules.late_correction(PublishMode.REFRESH, times, now, max_age).keep is None  # only corrections are windowed


def test_skipped_values_count_under_the_rule_of_their_mode() -> None:
    assert rules.skipped_as_older(PublishMode.REFRESH, 3).reason == rules.OLDER_THAN_ONLINE
    assert rules.skipped_as_older(PublishMode.BACKFILL, 3).reason == rules.BACKFILL_NOT_NEWEST
    assert rules.skipped_as_older(PublishMode.CORRECTION, 3).reason == rules.CORRECTION_OLDER_THAN_ONLINE
    assert rules.skipped_as_older(PublishMode.REFRESH, 0).reason is None


def test_timestamp_validity_rejects_exactly_the_invalid_rows() -> None:
    decision = rules.timestamp_validity(np.array([True, False, True, False]))
    assert (decision.reason, decision.count, decision.keep.tolist()) == (rules.ROW_REJECTED, 2, [True, False, True, False])  # type: ignore[union-attr]


def test_schema_expansion_refuses_a_non_nullable_addition() -> None:
    from fsd.errors import FailedPrecondition

    assert rules.schema_expansion("g", "f", nullable=True).reason is None
    with pytest.raises(FailedPrecondition, match="non-nullable"):
        rules.schema_expansion("g", "f", nullable=False)
