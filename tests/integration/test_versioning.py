"""Version lifecycle through the daemon: pending versions, pinned reads, promote, retire, manifests, history."""
from __future__ import annotations

import threading

import grpc
import pyarrow as pa
import pytest

from fsd.client import Client
from fsd.domain import ValueStatus, VersionState
from fsd.registry.definitions import load_text
from tests.helpers import raises_status, rpc_error as status_of, seconds_ago, ts_column

V1 = """
feature_groups:
  - name: risk
    entity_keys: [{name: customer_id, type: int64}]
    source: parquet://offline/risk
    features:
      - {name: score, dtype: int64, transformation: "count(*)", window: 1h}
      - {name: label, dtype: string, description: first words}
"""
V2 = V1.replace('{name: score, dtype: int64, transformation: "count(*)", window: 1h}', '{name: score, dtype: double, transformation: "avg(x)", window: 1h}')


def publish(client: Client, ids: list[int], scores: pa.Array, versions: dict[str, int] | None = None) -> None:
    table = pa.table({"customer_id": pa.array(ids, pa.int64()), "event_timestamp": ts_column([seconds_ago(5)] * len(ids)), "score": scores})
    response = client.publish("risk", table, feature_versions=versions)
    assert response.rows_rejected == 0, response.rejections


@pytest.fixture
def risk(client: Client) -> Client:
    client.apply(load_text(V1))
    publish(client, [1, 2], pa.array([10, 20], pa.int64()))
    return client


def error_of(call):  # type: ignore[no-untyped-def]
    return status_of(call)


def test_breaking_change_is_a_pending_version_and_v1_keeps_serving(risk: Client) -> None:
    plan = risk.plan(load_text(V2))
    change = next(c for c in plan.changes if c.feature == "score")
    assert (change.action, change.version) == ("new_version", 2)
    assert "dtype" in change.detail and "transformation" in change.detail
    assert risk.get_features(["risk:score"], {"customer_id": [1]})["risk:score"].version == 1  # plan changed nothing

    risk.apply(load_text(V2), expected_revision=plan.revision)
    served = risk.get_features(["risk:score"], {"customer_id": [1, 2]})["risk:score"]
    assert served.version == 1 and served.values.tolist() == [10, 20]
    # A column of another type for the int64 v1 is refused whole; a fractional double is refused per row.
    err = error_of(lambda: publish(risk, [1], pa.array(["0.5"])))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "new feature version" in err.details()
    table = pa.table({"customer_id": pa.array([1], pa.int64()), "event_timestamp": ts_column([seconds_ago(1)]), "score": [0.5]})
    assert [r.rule for r in risk.publish("risk", table).rejections] == ["not_integral"]
    # Naming the PENDING v2 writes there and only there.
    publish(risk, [1, 2], pa.array([0.5, 0.25]), {"score": 2})
    assert risk.get_features(["risk:score"], {"customer_id": [1]})["risk:score"].values.tolist() == [10]
    pinned = risk.get_features(["risk:score@2"], {"customer_id": [1, 2]})["risk:score@2"]
    assert pinned.version == 2 and pinned.values.tolist() == [0.5, 0.25]


def test_promote_needs_published_values_then_switches(risk: Client) -> None:
    risk.apply(load_text(V2))
    err = error_of(lambda: risk.promote("risk", "score", 2))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "no published values" in err.details()
    publish(risk, [1], pa.array([0.5]), {"score": 2})
    assert risk.promote("risk", "score", 2, actor="ann", reason="better model").state == VersionState.SERVING
    served = risk.get_features(["risk:score", "risk:score@1"], {"customer_id": [1]})
    assert served["risk:score"].version == 2 and served["risk:score"].values.tolist() == [0.5]
    assert served["risk:score@1"].values.tolist() == [10]  # DEPRECATED stays readable when pinned
    history = risk.history("risk", "score")
    assert [v.state for v in history.versions] == [VersionState.DEPRECATED, VersionState.SERVING]
    actions = [(e.action, e.version, e.actor) for e in history.entries]
    assert ("promote", 2, "ann") in actions and ("deprecate", 1, "ann") in actions


def test_metadata_edit_keeps_the_version(risk: Client) -> None:
    result = risk.apply(load_text(V1.replace("first words", "better words")))
    change = next(c for c in result.changes if c.feature == "label")
    assert (change.action, change.version) == ("metadata_update", 1)


def test_refused_changes_write_nothing(risk: Client) -> None:
    before = risk.plan(load_text(V1)).revision
    for text, fragment in [
        (V1.replace("customer_id, type: int64", "customer_id, type: string"), "entity keys cannot change"),
        (V1.replace("      - {name: label, dtype: string, description: first words}\n", ""), "'label' was removed"),
        (V1 + "      - {name: strict, dtype: int64, nullable: false}\n", "non-nullable"),
    ]:
        err = error_of(lambda: risk.apply(load_text(text)))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and fragment in err.details()
    assert risk.plan(load_text(V1)).revision == before


def test_stale_apply_is_refused(risk: Client) -> None:
    plan = risk.plan(load_text(V2))
    risk.apply(load_text(V1.replace("first words", "someone else's edit")))
    err = error_of(lambda: risk.apply(load_text(V2), expected_revision=plan.revision))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "re-run plan" in err.details()


def test_nullable_addition_serves_not_found_for_old_entities(risk: Client) -> None:
    result = risk.apply(load_text(V1 + "      - {name: extra, dtype: double}\n"))
    assert next(c for c in result.changes if c.feature == "extra").action == "compatible_expansion"
    got = risk.get_features(["risk:extra", "risk:score"], {"customer_id": [1]})
    assert got["risk:extra"].statuses.tolist() == [ValueStatus.NOT_FOUND] and got["risk:extra"].version == 1
    assert got["risk:score"].values.tolist() == [10]


def test_manifest_pins_versions_and_blocks_retirement(risk: Client) -> None:
    manifest = risk.create_manifest("fraud_model", ["risk:score", "risk:label"], created_by="trainer")
    assert [(p.feature, p.version) for p in manifest.features] == [("score", 1), ("label", 1)]
    risk.apply(load_text(V2))
    publish(risk, [1], pa.array([0.5]), {"score": 2})
    risk.promote("risk", "score", 2)
    by_manifest = risk.get_features([], {"customer_id": [1]}, manifest="fraud_model")
    assert by_manifest.manifest == "fraud_model@1"
    assert by_manifest["risk:score@1"].version == 1 and by_manifest["risk:score@1"].values.tolist() == [10]
    subset = risk.get_features(["risk:score"], {"customer_id": [1]}, manifest="fraud_model")
    assert subset["risk:score"].version == 1  # the manifest wins over the SERVING v2
    err = error_of(lambda: risk.get_features(["risk:score@2"], {"customer_id": [1]}, manifest="fraud_model"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "pins 1" in err.details()

    err = error_of(lambda: risk.retire("risk", "score", 1))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "fraud_model@1" in err.details()
    risk.retire("risk", "score", 1, force=True, reason="model retired")
    err = error_of(lambda: risk.get_features(["risk:score@1"], {"customer_id": [1]}))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "RETIRED" in err.details()
    err = error_of(lambda: risk.promote("risk", "score", 1))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_serving_version_cannot_be_retired(risk: Client) -> None:
    err = error_of(lambda: risk.retire("risk", "score", 1))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "SERVING" in err.details()


def test_retired_values_are_purged_after_retention(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(env={"FSD_STORE_RETIRE_RETENTION_SECONDS": "0"}).start()
    with Client(daemon.target) as client:
        client.apply(load_text(V1))
        publish(client, [1, 2], pa.array([10, 20], pa.int64()))
        client.apply(load_text(V2))
        publish(client, [1, 2], pa.array([0.5, 0.25]), {"score": 2})
        client.promote("risk", "score", 2)
        client.retire("risk", "score", 1)
        import time

        deadline = time.monotonic() + 20
        while not any(e.action == "purge" for e in client.history("risk", "score").entries):
            assert time.monotonic() < deadline, "retired version was never purged"
            time.sleep(0.1)
        got = client.get_features(["risk:score", "risk:label"], {"customer_id": [1, 2]})
        assert got["risk:score"].values.tolist() == [0.5, 0.25]  # the other versions in the same rows survive


def test_promotion_is_atomic_for_concurrent_readers(risk: Client) -> None:
    risk.apply(load_text(V2))
    publish(risk, list(range(1, 51)), pa.array([float(i) / 2 for i in range(1, 51)]), {"score": 2})
    publish(risk, list(range(1, 51)), pa.array(list(range(1, 51)), pa.int64()))
    seen: list[tuple[int, int]] = []
    problems: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        ids = list(range(1, 51))
        while not stop.is_set():
            got = risk.get_features(["risk:score", "risk:score", "risk:label"], {"customer_id": ids})
            columns = list(got.features.values())
            score = got["risk:score"]
            expected = [float(i) / 2 for i in ids] if score.version == 2 else list(range(1, 51))
            if score.values.tolist() != expected or set(score.statuses.tolist()) != {ValueStatus.PRESENT}:
                problems.append(f"v{score.version} served other values")
            seen.append((score.version, len(columns)))

    thread = threading.Thread(target=reader)
    thread.start()
    while len(seen) < 20:
        pass
    risk.promote("risk", "score", 2)
    count = len(seen)
    while len(seen) < count + 20:
        pass
    stop.set()
    thread.join()
    assert not problems
    versions = [v for v, _ in seen]
    switch = versions.index(2)
    assert set(versions[:switch]) == {1} and set(versions[switch:]) == {2}  # one switch, never back


def test_history_survives_restart(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory().start()
    with Client(daemon.target) as client:
        client.apply(load_text(V1), applied_by="ann", reason="launch")
        client.apply(load_text(V2), applied_by="bob", reason="new transformation")
        client.create_manifest("m", ["risk:score@1"])
    daemon.terminate()
    daemon.start()
    with Client(daemon.target) as client:
        history = client.history("risk", "score")
        assert [(e.action, e.version, e.actor, e.reason) for e in history.entries if e.feature == "score"][:2] == [
            ("create", 1, "ann", "launch"),
            ("new_version", 2, "bob", "new transformation"),
        ]
        assert [v.state for v in history.versions] == [VersionState.SERVING, VersionState.PENDING]
        assert list(history.versions[0].pinned_by) == ["m@1"]
        assert client.get_manifest("m").features[0].version == 1
