"""Computed features through a real daemon: events pushed (PushEvents, `fsd push`, Client.push_events), kept as
tiles online and as an event log offline; the online value at the instant it was served equals the training
value at that instant and the brute-force reference over the logged events — for every function, with ties,
nulls, out-of-order and late events; a new window fills from the log while the old version serves; kill -9
loses nothing acknowledged."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fsd.aggregation.event_log import EventLog
from fsd.aggregation.reference import Event, value_at
from fsd.client import Client
from fsd.domain.aggregation import Aggregation
from fsd.errors import FsdError, InvalidArgument
from fsd.registry.definitions import load_text
from tests.daemon_process import DaemonProcess
from tests.helpers import wait_for

TS = pa.timestamp("us", tz="UTC")
REPO = """
feature_groups:
  - name: card_activity
    entity_keys: [{name: card_id, type: int64}]
    max_age: 1h
    event_source:
      columns: {amount: double, merchant: string}
      allowed_lateness: 10m
    features:
      - {name: txn_count_1h, dtype: int64, aggregation: {function: count, window: 1h}}
      - {name: amount_sum_1h, dtype: double, aggregation: {function: sum, column: amount, window: 1h}}
      - {name: amount_mean_1h, dtype: double, aggregation: {function: mean, column: amount, window: 1h}}
      - {name: amount_min_1h, dtype: double, aggregation: {function: min, column: amount, window: 1h}}
      - {name: amount_max_1h, dtype: double, aggregation: {function: max, column: amount, window: 1h}}
      - {name: last_merchant, dtype: string, aggregation: {function: last, column: merchant, window: 1h}}
      - {name: merchants_1h, dtype: int64, aggregation: {function: count_distinct, column: merchant, window: 1h}}
      - {name: big_count_1h, dtype: int64, aggregation: {function: count, window: 1h, filter: "amount > 50"}}
"""
FEATURES = ["txn_count_1h", "amount_sum_1h", "amount_mean_1h", "amount_min_1h", "amount_max_1h", "last_merchant", "merchants_1h", "big_count_1h"]
REFS = [f"card_activity:{f}" for f in FEATURES]


def events(cards: list[int], ages_s: list[float], amounts: list[object], merchants: list[object]) -> pa.Table:
    now = dt.datetime.now(dt.timezone.utc)
    return pa.table({"card_id": pa.array(cards, pa.int64()),
                     "event_timestamp": pa.array([now - dt.timedelta(seconds=a) for a in ages_s], TS),
                     "amount": pa.array(amounts, pa.float64()), "merchant": pa.array(merchants, pa.string())})


def logged(client: Client, card: int) -> list[Event]:
    log = EventLog(client.get_deployment().offline_root, "card_activity").read()
    if log is None:
        return []
    out = []
    for row in log.to_pylist():
        if row["card_id"] == card:
            micros = lambda t: int(t.timestamp() * 1_000_000) if t.tzinfo else 0  # noqa: E731
            out.append(Event(_micros(row["event_timestamp"]), _micros(row["received_timestamp"]), (row["_seq"], row["_row"]),
                             {"amount": row["amount"], "merchant": row["merchant"]}))
    return out


def _micros(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)


def expected_at(client: Client, card: int, t: int) -> list[tuple[int, object]]:
    info = client.get_group("card_activity")
    out = []
    for name in FEATURES:
        spec = info.spec.feature(name)
        status, value, _ = value_at(spec.aggregation, logged(client, card), t, 3600 * 1_000_000)
        out.append((status, value))
    return out


def served(client: Client, cards: list[int]) -> tuple[int, dict[int, list[tuple[int, object]]]]:
    got = client.get_features(REFS, {"card_id": cards})
    table = got.to_arrow(include=["status"])
    result = {}
    for i, card in enumerate(cards):
        statuses = [{"PRESENT": 1, "NOT_FOUND": 2, "STALE": 3}[table[f"{r}:status"][i].as_py()] for r in REFS]
        result[card] = [(s, table[r][i].as_py()) for s, r in zip(statuses, REFS)]
    return got.served_at_micros, result


def training(client: Client, cards: list[int], t: int) -> dict[int, list[tuple[int, object]]]:
    at = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=t)
    table = client.get_historical_features(pa.table({"card_id": pa.array(cards, pa.int64()), "event_timestamp": pa.array([at] * len(cards), TS)}), REFS)
    out = {}
    for i, card in enumerate(cards):
        statuses = [{"PRESENT": 1, "NOT_FOUND": 2, "STALE": 3}[table[f"{r}:status"][i].as_py()] for r in REFS]
        out[card] = [(s, table[r][i].as_py()) for s, r in zip(statuses, REFS)]
    return out


@pytest.fixture
def computed(daemon_factory, both_serving_modes):  # type: ignore[no-untyped-def]
    daemon = daemon_factory(workers=both_serving_modes).start()
    with Client(daemon.target) as client:
        client.apply(load_text(REPO))
        yield daemon, client


def test_an_online_value_moves_with_each_event_and_training_agrees(computed) -> None:  # type: ignore[no-untyped-def]
    daemon, client = computed
    assert served(client, [1])[1][1][0] == (2, None)  # NOT_FOUND before any event
    result = client.push_events("card_activity", events([1, 1, 2], [120, 60, 30], [10.0, 70.0, None], ["m1", "m2", "m1"]))
    assert (result.rows_accepted, result.rows_rejected) == (3, 0)
    t, now = served(client, [1, 2, 3])
    assert now[1] == [(1, 2), (1, 80.0), (1, 40.0), (1, 10.0), (1, 70.0), (1, "m2"), (1, 2), (1, 1)]
    assert now[2][:3] == [(1, 1), (1, 0.0), (1, None)] and now[3][0] == (2, None)
    for card in (1, 2, 3):
        assert now[card] == expected_at(client, card, t)
    assert training(client, [1, 2, 3], t) == now
    client.push_events("card_activity", events([1], [1], [5.0], ["m3"]))
    _, later = served(client, [1])
    assert later[1][0] == (1, 3) and later[1][5] == (1, "m3")  # moved with the event


def test_late_future_and_malformed_events_are_refused_clearly(computed) -> None:  # type: ignore[no-untyped-def]
    _, client = computed
    result = client.push_events("card_activity", events([1, 1, 1], [30, 3600, -3600], [1.0, 2.0, 3.0], ["a", "b", "c"]))
    assert (result.rows_accepted, result.rows_rejected) == (1, 2)
    assert {r.rule for r in result.rejections} == {"late_correction", "timestamp_in_future"}
    assert [(r.row_start, r.rule) for r in result.rejections] == [(1, "late_correction"), (2, "timestamp_in_future")]
    with pytest.raises(InvalidArgument, match="not an event column"):
        client.push_events("card_activity", events([1], [1], [1.0], ["a"]).append_column("extra", pa.array([1])))
    with pytest.raises(FsdError, match="no event source"):
        client.apply(load_text("""
feature_groups:
  - name: plain
    entity_keys: [{name: id, type: int64}]
    features: [{name: x, dtype: double}]
"""))
        client.push_events("plain", pa.table({"id": [1], "event_timestamp": pa.array([dt.datetime.now(dt.timezone.utc)], TS)}))


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 5400), st.one_of(st.none(), st.sampled_from([1.5, 20.0, 60.0, 99.25])),
                                   st.one_of(st.none(), st.sampled_from(["m1", "m2", "m3"]))), min_size=1, max_size=12), min_size=1, max_size=4))
def test_online_equals_training_equals_brute_force_for_random_pushes(shared_computed, pushes) -> None:  # type: ignore[no-untyped-def]
    client = shared_computed
    for batch in pushes:
        cards, ages, amounts, merchants = zip(*batch)
        client.push_events("card_activity", events(list(cards), list(ages), list(amounts), list(merchants)))
        t, now = served(client, [1, 2, 3])
        for card in (1, 2, 3):
            assert now[card] == expected_at(client, card, t), card
        assert training(client, [1, 2, 3], t) == now


@pytest.fixture(scope="module")
def shared_computed(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    daemon = DaemonProcess(tmp_path_factory.mktemp("computed") / "data").start()
    with Client(daemon.target) as client:
        client.apply(load_text(REPO))
        yield client
    daemon.stop()


def test_a_new_window_fills_from_the_log_while_the_old_version_serves(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    repo = REPO.replace("allowed_lateness: 10m", "allowed_lateness: 3h")  # events up to 3 h late still count
    client = Client(daemon_factory().start().target)
    client.apply(load_text(repo))
    client.push_events("card_activity", events([1, 1, 1], [300, 5000, 7500], [1.0, 2.0, 4.0], ["a", "b", "c"]))  # 5, 83, 125 min ago
    client.push_events("card_activity", events([1], [10], [8.0], ["d"]))
    before = client.get_features(["card_activity:txn_count_1h"], {"card_id": [1]})["card_activity:txn_count_1h"].values.tolist()
    assert before == [2]  # the 1 h window: two events (those 83 and 125 min old are outside it)
    result = client.apply(load_text(repo.replace("{name: txn_count_1h, dtype: int64, aggregation: {function: count, window: 1h}}",
                                                 "{name: txn_count_1h, dtype: int64, aggregation: {function: count, window: 2h}}")))
    assert [(c.feature, c.action, c.version) for c in result.changes if c.action == "new_version"] == [("txn_count_1h", "new_version", 2)]
    still = client.get_features(["card_activity:txn_count_1h"], {"card_id": [1]})
    assert still["card_activity:txn_count_1h"].version == 1 and still["card_activity:txn_count_1h"].values.tolist() == [2]
    filled = wait_for(lambda: (got := client.get_features(["card_activity:txn_count_1h@2"], {"card_id": [1]})["card_activity:txn_count_1h@2"])
                      .status_names() == ["PRESENT"] and got)
    assert filled.version == 2 and filled.values.tolist() == [3]  # 2 h reaches the event 83 min ago, not the one 125 min ago
    client.close()


def test_kill_9_during_pushes_loses_nothing_acknowledged(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory().start()
    with Client(daemon.target) as client:
        client.apply(load_text(REPO))
    acknowledged: list[int] = []
    stop = threading.Event()

    def pusher() -> None:
        n = 0
        while not stop.is_set():
            try:
                with Client(daemon.target, timeout=5) as c:
                    while not stop.is_set():
                        c.push_events("card_activity", events([n % 5 + 1] * 20, [1] * 20, [1.0] * 20, [f"m{n}"] * 20), push_id=f"p{n}")
                        acknowledged.append(n)
                        n += 1
            except FsdError:
                time.sleep(0.05)

    thread = threading.Thread(target=pusher)
    thread.start()
    time.sleep(1.5)
    os.kill(daemon.proc.pid, signal.SIGKILL)
    daemon.proc.wait(30)
    stop.set()
    thread.join(30)
    daemon.start()
    with Client(daemon.target) as client:
        log = EventLog(client.get_deployment().offline_root, "card_activity").read()
        pushed = set(log["_push"].to_pylist()) if log is not None else set()
        assert {f"p{n}" for n in acknowledged} <= pushed  # nothing acknowledged is missing from the log
        assert log is not None and log.num_rows == 20 * len(pushed)  # and nothing twice
        t, now = served(client, [1, 2, 3, 4, 5])
        for card in (1, 2, 3, 4, 5):
            assert now[card] == expected_at(client, card, t)  # the tiles agree with the log


def test_fsd_push_from_a_parquet_file(computed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    daemon, client = computed
    pq.write_table(events([7, 7], [20, 10], [3.0, 4.0], ["x", "y"]), tmp_path / "events.parquet")
    run = subprocess.run([sys.executable, "-m", "fsd.cli", "push", "card_activity", str(tmp_path / "events.parquet"), "--target", daemon.target],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "2 events accepted" in run.stdout
    assert client.get_features(["card_activity:amount_sum_1h"], {"card_id": [7]})["card_activity:amount_sum_1h"].values.tolist() == [7.0]


def test_deleting_the_group_removes_its_tiles(computed) -> None:  # type: ignore[no-untyped-def]
    daemon, client = computed
    client.push_events("card_activity", events([1], [5], [1.0], ["a"]))
    client.delete_group("card_activity", force=True)
    client.apply(load_text(REPO))  # the same name again: a new group, with nothing of the old one
    assert served(client, [1])[1][1][0] == (2, None)


def test_freshness_of_a_computed_group_is_the_age_of_the_newest_event(computed) -> None:  # type: ignore[no-untyped-def]
    _, client = computed
    client.push_events("card_activity", events([1, 2], [90, 30], [1.0, 2.0], ["a", "b"]))
    status = wait_for(lambda: (g := client.status("card_activity").groups[0]).freshness_lag_seconds is not None and g, step=0.2)
    assert 30 <= status.freshness_lag_seconds < 90  # the newest event is 30 s old
    assert not any("never synced" in a for a in status.alerts)
    ratios = {f.feature: f.stale_entity_ratio for f in status.features}
    assert ratios["txn_count_1h"] == 0.0  # sampled, and fresh


def test_the_validator_recomputes_from_the_event_log_and_sees_a_tampered_tile(computed) -> None:  # type: ignore[no-untyped-def]
    """Validation of computed features compares values (100 % when nothing is wrong), and a difference between the
    tiles and the event log — here, an event appended to the log behind the daemon's back — is a defect."""
    daemon, client = computed
    client.push_events("card_activity", events([1, 2, 3], [60, 30, 10], [5.0, 6.0, 7.0], ["a", "b", "c"]))
    result = client.validate("card_activity", sample=10)
    assert result.features and all(f.sampled == 3 and f.consistency == 1.0 for f in result.features)
    log = EventLog(client.get_deployment().offline_root, "card_activity")
    extra = log.batch(1).slice(0, 1)
    log.append(999, extra)  # an event the tiles never saw
    tampered = client.validate("card_activity", sample=10, feature="txn_count_1h")
    assert tampered.features[0].consistency < 1.0 and tampered.features[0].mismatches.value_differs == 1
    assert "events involved" in daemon.log()


def test_dataset_create_and_every_engine_give_the_same_computed_values(computed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, client = computed
    client.push_events("card_activity", events([1, 1, 2], [300, 100, 50], [10.0, 20.0, 5.0], ["a", "b", "a"]))
    t, now = served(client, [1, 2, 3])
    at = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=t)
    rows = pa.table({"card_id": pa.array([1, 2, 3], pa.int64()), "event_timestamp": pa.array([at] * 3, TS)})
    local = client.get_historical_features(rows, REFS)
    assert client.get_historical_features(rows, REFS, engine="duckdb").equals(local)
    doc = client.create_dataset(rows, str(tmp_path / "train.parquet"), REFS, name="activity_model")
    written = pq.read_table(tmp_path / "train.parquet")
    assert written.select(local.column_names).to_pylist() == local.to_pylist()
    assert doc["serving_manifest"] == "activity_model@1" and doc["rows"] == 3
    assert doc["features"][0]["statuses"] == {"PRESENT": 2, "STALE": 0, "NOT_FOUND": 1}
    assert training(client, [1, 2, 3], t) == now


def test_replicas_over_redis_cluster_push_concurrently_and_agree_with_the_log(deployment) -> None:  # type: ignore[no-untyped-def]
    """Two stateless replicas (Redis Cluster tiles, PostgreSQL registry, one offline event log): concurrent pushes
    through both are folded one writer at a time per group (the registry's hold), and both serve what the log gives."""
    a, b = deployment.start(2)
    with Client(a) as first:
        first.apply(load_text(REPO))
    failures: list[BaseException] = []

    def pusher(target: str, offset: int) -> None:
        try:
            with Client(target, timeout=30) as c:
                for n in range(6):
                    cards = [1 + (offset + n + i) % 4 for i in range(10)]
                    c.push_events("card_activity", events(cards, [5 + i for i in range(10)], [float(n + i) for i in range(10)],
                                                          [f"m{(n + i) % 3}" for i in range(10)]), push_id=f"{target}-{n}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=pusher, args=(t, i)) for i, t in enumerate((a, b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    for target in (a, b):
        with Client(target) as client:
            log = EventLog(client.get_deployment().offline_root, "card_activity").read()
            assert log is not None and log.num_rows == 120 and len(set(log["_seq"].to_pylist())) == 12
            t, now = served(client, [1, 2, 3, 4])
            for card in (1, 2, 3, 4):
                assert now[card] == expected_at(client, card, t), (target, card)


def test_a_replay_never_counts_an_event_twice_when_tiles_were_written_but_the_marker_was_not(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    """An engine without atomic multi-key writes (Redis Cluster) can keep an entity's new tiles and lose the
    marker's step: every blob records the last push it folded, and a replay skips what an entity already holds."""
    import json as _json

    from fsd.aggregation.layout import marker_key
    from fsd.online.rocksdb import RocksDbOnlineStore

    daemon = daemon_factory().start()
    with Client(daemon.target) as client:
        client.apply(load_text(REPO))
        client.push_events("card_activity", events([1, 2], [20, 10], [3.0, 4.0], ["a", "b"]))
        client.push_events("card_activity", events([1], [5], [5.0], ["c"]))
        group_id = client.get_group("card_activity").group_id
    daemon.stop()
    store = RocksDbOnlineStore(str(daemon.data_dir / "online"))
    key = marker_key(group_id)
    marker = _json.loads(store.get_many([key])[0])
    marker["seq"] = 0  # as if no step of the marker had been written: the whole log replays at start
    store.write_batch([(key, _json.dumps(marker).encode())])
    store.close()
    daemon.start()
    with Client(daemon.target) as client:
        t, now = served(client, [1, 2])
        assert now[1][0] == (1, 2) and now[2][0] == (1, 1)  # not 4 and 2: nothing counted twice
        for card in (1, 2):
            assert now[card] == expected_at(client, card, t)


NON_NUMERIC = ("last_merchant", "merchants_1h")
NUMERIC_REPO = "\n".join(line for line in REPO.splitlines() if not any(name in line for name in NON_NUMERIC))  # count/sum/mean/min/max
NUMERIC_FEATURES = [f for f in FEATURES if f not in NON_NUMERIC]


def test_a_numeric_group_takes_the_compiled_fold_and_a_push_failing_midway_keeps_its_logged_chunks(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    """count/sum/mean/min/max fold in one compiled call per push (chunks folded together): the served values equal
    the brute-force reference over the log; when a later chunk of a push is refused, the earlier chunks (logged,
    durable) are in the tiles at once, and the next push goes on from there."""
    import random

    daemon = daemon_factory(env={"FSD_LIMITS_MAX_CHUNK_ROWS": "50"}).start()
    refs = [f"card_activity:{f}" for f in NUMERIC_FEATURES]
    rng = random.Random(5)
    with Client(daemon.target) as client:
        client.apply(load_text(NUMERIC_REPO))
        n = 180
        batch = events([rng.randint(1, 6) for _ in range(n)], [rng.uniform(0, 550) for _ in range(n)],
                       [rng.choice([None, round(rng.uniform(-20, 120), 2)]) for _ in range(n)], ["m"] * n)
        result = client.push_events("card_activity", batch, chunk_rows=40)  # five chunks, folded together
        assert (result.rows_accepted, result.rows_rejected, result.chunks_written) == (n, 0, 5)
        with pytest.raises(FsdError, match="max_chunk_rows"):
            client.push_events("card_activity", pa.concat_tables([events([7] * 10, [5] * 10, [1.0] * 10, ["m"] * 10),
                                                                  events([8] * 60, [5] * 60, [1.0] * 60, ["m"] * 60)]), chunk_rows=100)  # chunks of 10, then 60 rows
        got = client.get_features(refs, {"card_id": [7]})
        assert got["card_activity:txn_count_1h"].values.tolist() == [10]  # the first chunk: durable and folded
        client.push_events("card_activity", events([7, 8], [1, 1], [2.0, 3.0], ["m", "m"]))
        info = client.get_group("card_activity")
        log = EventLog(client.get_deployment().offline_root, "card_activity").read()
        assert log is not None
        table = client.get_features(refs, {"card_id": list(range(1, 9))}).to_arrow(include=["status"])
        served_at = client.get_features(refs[:1], {"card_id": [1]}).served_at_micros
        for i, card in enumerate(range(1, 9)):
            rows = [Event(_micros(r["event_timestamp"]), _micros(r["received_timestamp"]), (r["_seq"], r["_row"]),
                          {"amount": r["amount"], "merchant": r["merchant"]}) for r in log.to_pylist() if r["card_id"] == card]
            for name, ref in zip(NUMERIC_FEATURES, refs):
                status, value, _ = value_at(info.spec.feature(name).aggregation, rows, served_at, 3600 * 1_000_000)
                assert table[ref][i].as_py() == value, (card, name)
        at = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=served_at)
        trained = client.get_historical_features(pa.table({"card_id": pa.array(range(1, 9), pa.int64()), "event_timestamp": pa.array([at] * 8, TS)}), refs)
        for ref in refs:  # the compiled training fold gives what was served
            assert trained[ref].to_pylist() == table[ref].to_pylist(), ref
