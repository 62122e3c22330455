"""Point-in-time retrieval against a brute-force reference, on real Parquet files; leakage and version isolation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd.errors import InvalidArgument
from fsd.offline.retrieval import FeatureVersion, get_historical_features, latest_values
from fsd.offline.store import OfflineStore

TS = pa.timestamp("us", tz="UTC")
BASE = 1_700_000_000_000_000
SEC = 1_000_000


def feature_rows(rows: list[tuple[int, str, int, int, float | None]]) -> pa.Table:
    """(customer_id, merchant, event offset s, created offset s, value)."""
    return pa.table({
        "customer_id": pa.array([r[0] for r in rows], pa.int64()),
        "merchant": pa.array([r[1] for r in rows]),
        "event_timestamp": pa.array([BASE + r[2] * SEC for r in rows], TS),
        "created_timestamp": pa.array([BASE + r[3] * SEC for r in rows], TS),
        "value": pa.array([r[4] for r in rows], pa.float64()),
    })


def brute_force(rows, entity, t, max_age, as_of):  # type: ignore[no-untyped-def]
    candidates = [r for r in rows if (r[0], r[1]) == entity and BASE + r[2] * SEC <= t and (as_of is None or BASE + r[3] * SEC <= as_of)]
    if not candidates:
        return None, "NOT_FOUND"
    best = candidates[0]
    for r in candidates:  # greatest (event, created); among exact ties the row written last
        if (r[2], r[3]) >= (best[2], best[3]):
            best = r
    if max_age and t - (BASE + best[2] * SEC) > max_age:
        return None, "STALE"
    return best[4], "PRESENT"


entities = st.tuples(st.integers(1, 4), st.sampled_from(["a", "b"]))
feature_row = st.tuples(st.integers(1, 4), st.sampled_from(["a", "b"]), st.integers(0, 50), st.integers(0, 80),
                        st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)))


def check_against_brute_force(out: pa.Table, rows, queries, max_age_s, as_of) -> None:  # type: ignore[no-untyped-def]
    assert out.num_rows == len(queries)  # no row dropped, order kept
    assert out["customer_id"].to_pylist() == [q[0][0] for q in queries]
    for i, ((entity, t_s)) in enumerate(queries):
        value, status = brute_force(rows, entity, BASE + t_s * SEC, max_age_s * SEC, as_of)
        assert out["g:f:status"][i].as_py() == status, (entity, t_s)
        assert out["g:f"][i].as_py() == value, (entity, t_s)


def brute_force_case(store: OfflineStore, rows, queries, max_age_s, as_of_s):  # type: ignore[no-untyped-def]
    """Writes the rows (in two snapshots, so ties span files) and returns (entity rows, feature, as_of)."""
    if rows:
        half = len(rows) // 2
        for part in (rows[:half], rows[half:]):
            if part:
                store.write("g", "f", 1, feature_rows(part))
    entity_rows = pa.table({
        "customer_id": pa.array([q[0][0] for q in queries], pa.int64()),
        "merchant": pa.array([q[0][1] for q in queries]),
        "event_timestamp": pa.array([BASE + q[1] * SEC for q in queries], TS),
    })
    feature = FeatureVersion("g", "f", 1, ("customer_id", "merchant"), max_age_s * SEC)
    return entity_rows, feature, None if as_of_s is None else BASE + as_of_s * SEC


brute_force_inputs = dict(
    rows=st.lists(feature_row, max_size=40),
    queries=st.lists(st.tuples(entities, st.integers(-5, 60)), min_size=1, max_size=30),
    max_age_s=st.sampled_from([0, 5, 10]),
    as_of_s=st.one_of(st.none(), st.integers(0, 80)),
)


@settings(max_examples=150)
@given(**brute_force_inputs)
def test_as_of_join_matches_brute_force(tmp_path_factory, rows, queries, max_age_s, as_of_s) -> None:  # type: ignore[no-untyped-def]
    store = OfflineStore(tmp_path_factory.mktemp("off"))
    entity_rows, feature, as_of = brute_force_case(store, rows, queries, max_age_s, as_of_s)
    out = get_historical_features(store, entity_rows, [feature], as_of_micros=as_of, with_status=True)
    check_against_brute_force(out, rows, queries, max_age_s, as_of)


def test_equal_event_times_take_the_latest_created_whatever_the_write_order(tmp_path: Path) -> None:
    store = OfflineStore(tmp_path)
    # The correction (created later) is written first; ids spread so the sort sees many rows.
    rows = [(1, "a", 10, 90, 2.0), (1, "a", 10, 20, 1.0)] + [(e, "b", s, s, float(e)) for e in range(2, 40) for s in (1, 2)]
    store.write("g", "f", 1, feature_rows(rows))
    entity_rows = pa.table({"customer_id": [1], "merchant": ["a"], "event_timestamp": pa.array([BASE + 50 * SEC], TS)})
    out = get_historical_features(store, entity_rows, [FeatureVersion("g", "f", 1, ("customer_id", "merchant"), 0)])
    assert out["g:f"].to_pylist() == [2.0]


def test_no_value_from_after_the_row_time_and_ttl_boundary(tmp_path: Path) -> None:
    store = OfflineStore(tmp_path)
    store.write("g", "f", 1, feature_rows([(1, "a", 10, 10, 1.0), (1, "a", 20, 20, 2.0)]))
    rows = pa.table({"customer_id": [1, 1, 1, 1], "merchant": ["a"] * 4,
                     "event_timestamp": pa.array([BASE + s * SEC for s in (9, 10, 19, 30)], TS)})
    out = get_historical_features(store, rows, [FeatureVersion("g", "f", 1, ("customer_id", "merchant"), 10 * SEC)], with_status=True)
    assert out["g:f"].to_pylist() == [None, 1.0, 1.0, 2.0]  # t=30 is exactly max age after 20: still PRESENT
    assert out["g:f:status"].to_pylist() == ["NOT_FOUND", "PRESENT", "PRESENT", "PRESENT"]


def test_versions_never_mix(tmp_path: Path) -> None:
    store = OfflineStore(tmp_path)
    store.write("g", "f", 1, feature_rows([(1, "a", 10, 10, 1.0)]))
    store.write("g", "f", 2, feature_rows([(1, "a", 10, 10, 222.0), (2, "a", 10, 10, 333.0)]))  # a v2 backfill
    rows = pa.table({"customer_id": [1, 2], "merchant": ["a", "a"], "event_timestamp": pa.array([BASE + 60 * SEC] * 2, TS)})
    v1 = get_historical_features(store, rows, [FeatureVersion("g", "f", 1, ("customer_id", "merchant"), 0)])
    assert v1["g:f"].to_pylist() == [1.0, None]
    v2 = get_historical_features(store, rows, [FeatureVersion("g", "f", 2, ("customer_id", "merchant"), 0)])
    assert v2["g:f"].to_pylist() == [222.0, 333.0]


def test_timezone_aware_inputs_are_normalised_and_naive_refused(tmp_path: Path) -> None:
    store = OfflineStore(tmp_path)
    store.write("g", "f", 1, feature_rows([(1, "a", 0, 0, 5.0)]))
    berlin = timezone(timedelta(hours=1))
    when = datetime.fromtimestamp(BASE / SEC, tz=timezone.utc).astimezone(berlin)
    rows = pa.table({"customer_id": [1], "merchant": ["a"], "event_timestamp": pa.array([when], pa.timestamp("us", tz="Europe/Berlin"))})
    out = get_historical_features(store, rows, [FeatureVersion("g", "f", 1, ("customer_id", "merchant"), 0)])
    assert out["g:f"].to_pylist() == [5.0]
    naive = rows.set_column(2, "event_timestamp", pa.array([when.replace(tzinfo=None)], pa.timestamp("us")))
    with pytest.raises(InvalidArgument, match="naive"):
        get_historical_features(store, naive, [FeatureVersion("g", "f", 1, ("customer_id", "merchant"), 0)])


def test_latest_values_per_entity(tmp_path: Path) -> None:
    store = OfflineStore(tmp_path)
    store.write("g", "f", 1, feature_rows([(1, "a", 10, 10, 1.0), (1, "a", 20, 21, 2.0), (1, "a", 20, 25, 2.5), (2, "b", 5, 5, 9.0), (2, "b", 90, 90, 10.0)]))
    feature = FeatureVersion("g", "f", 1, ("customer_id", "merchant"), 0)
    latest = latest_values(store, feature, as_of_micros=BASE + 50 * SEC)
    got = sorted(zip(latest["customer_id"].to_pylist(), latest["value"].to_pylist()))
    assert got == [(1, 2.5), (2, 9.0)]  # equal event times: the later created (a correction) wins; 90 is after as_of
    incremental = latest_values(store, feature, as_of_micros=BASE + 50 * SEC, since_created_micros=BASE + 22 * SEC)
    assert incremental["customer_id"].to_pylist() == [1]


def test_writes_are_atomic_files(tmp_path: Path) -> None:
    store = OfflineStore(tmp_path)
    rows = [(1, "a", 0, 0, 1.0), (1, "a", 86400 * 2, 0, 2.0), (1, "a", 86400 * 40, 0, 3.0)]
    result = store.write("g", "f", 1, feature_rows(rows))
    assert len(result.files) == 2  # one per month partition (BASE is mid-November 2023)
    assert sorted(Path(f).parent.name for f in result.files) == ["month=2023-11", "month=2023-12"]
    assert not list(tmp_path.rglob(".tmp-*"))
    assert store.snapshots("g", "f", 1) == [result.snapshot_id]
