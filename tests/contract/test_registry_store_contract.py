"""The RegistryStore contract, run against every implementation: the SQL store on SQLite and on PostgreSQL.
Both must behave alike in every answer, refusal and error, including the free text a person types."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fsd.domain import DType, EntityKeySpec, FeatureSpec, GroupSpec, KeyType, ReplicaInfo, SyncRun, VersionState
from fsd.errors import FailedPrecondition, InvalidArgument, NotFound
from fsd.registry.registry import Registry
from fsd.registry.sql import SqlRegistryStore, open_registry_store
from fsd.registry.store import Audit, HistoryNote
from tests.conftest import new_database
from tests.helpers import wait_for

KEYS = (EntityKeySpec("customer_id", KeyType.INT64),)
AMOUNT = FeatureSpec("amount", DType.DOUBLE, transformation="sum(x)", window_seconds=3600)
COUNT = FeatureSpec("count", DType.INT64, transformation="count(*)", window_seconds=3600)


def group(name: str = "g", *features: FeatureSpec) -> GroupSpec:
    return GroupSpec(name=name, entity_keys=KEYS, features=features or (AMOUNT,))


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], SqlRegistryStore]]:
    """Opens the same registry (a new SQLite file, or a new PostgreSQL database) as often as a test asks."""
    url = str(tmp_path / "registry.sqlite") if request.param == "sqlite" else new_database(request.getfixturevalue("postgres"))
    opened: list[SqlRegistryStore] = []

    def make() -> SqlRegistryStore:
        opened.append(open_registry_store(url))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], SqlRegistryStore]) -> SqlRegistryStore:
    return open_store()


def test_a_new_registry_is_empty_at_revision_zero(store: SqlRegistryStore) -> None:
    state = store.load()
    assert (state.revision, state.epoch, state.groups, state.manifests) == (0, 0, {}, {})
    assert store.kind in ("sqlite", "postgresql") and store.shared == (store.kind == "postgresql")


def test_definitions_lifecycle_and_history_survive_reopen(open_store: Callable[[], SqlRegistryStore]) -> None:
    registry = Registry(open_store())
    registry.apply([group("g", AMOUNT, COUNT)], actor="ann", reason="launch")
    registry.apply([group("g", FeatureSpec("amount", DType.DOUBLE, transformation="sum(y)", window_seconds=3600), COUNT)], actor="bob")
    registry.note_published([registry.snapshot().resolve("g:amount@2").slot])
    registry.promote("g", "amount", 2, actor="bob", reason="better", force=True)
    registry.retire("g", "amount", 1, actor="bob", force=True)
    registry.create_manifest("model", ["g:amount", "g:count"], actor="cy", description="first model")
    slot = registry.snapshot().resolve("g:amount").slot
    registry.set_blocked(slot, True)
    registry.set_group_stale("g", True, source="validator")
    reopened = Registry(open_store())
    snap = reopened.snapshot()
    assert snap.revision == registry.snapshot().revision and snap.epoch == registry.snapshot().epoch
    versions = {v.version: v for v in snap.group("g").versions["amount"]}
    assert versions[2].state == VersionState.SERVING and versions[1].state == VersionState.RETIRED
    assert versions[1].retired_micros is not None and versions[2].first_published_micros is not None
    assert snap.blocked == {slot} and snap.stale_groups == {"g"}
    assert [p.version for p in snap.manifest("model").features] == [2, 1]
    actions = [(h.feature, h.action, h.actor) for h in reopened.history("g", "amount").entries]
    assert ("amount", "create", "ann") in actions and ("amount", "promote", "bob") in actions and ("amount", "pinned", "cy") in actions


def test_a_write_against_a_stale_revision_is_refused_and_changes_nothing(store: SqlRegistryStore) -> None:
    registry = Registry(store)
    registry.apply([group()])
    before = store.load()
    with pytest.raises(FailedPrecondition) as refused:
        store.delete_group("g", [HistoryNote("g", "", 0, "delete_group", "x")], before.revision - 1, 1, Audit())
    assert refused.value.field == "expected_revision"
    after = store.load()
    assert after.revision == before.revision and set(after.groups) == {"g"}


def test_ids_are_never_reused_after_a_group_is_deleted(store: SqlRegistryStore) -> None:
    registry = Registry(store)
    registry.apply([group("a")])
    old = registry.snapshot().group("a")
    registry.delete_group("a")
    registry.apply([group("b")])
    new = registry.snapshot().group("b")
    assert new.group_id > old.group_id and new.versions["amount"][0].slot > old.versions["amount"][0].slot
    with pytest.raises(NotFound):
        store.delete_group("a", [], store.revision(), 1, Audit())
    with pytest.raises(NotFound):
        store.delete_manifest("nope", [], store.revision(), 1, Audit())


def test_flags_say_whether_they_changed_and_bump_the_epoch(store: SqlRegistryStore) -> None:
    epoch = store.epoch()
    assert store.set_blocked(7, True, 1) is True and store.set_blocked(7, True, 2) is False
    assert store.set_stale_mark("g", "freshness", True, 1) is True and store.set_stale_mark("g", "freshness", True, 1) is False
    assert store.epoch() == epoch + 2
    assert store.set_blocked(7, False, 3) is True and store.set_stale_mark("g", "freshness", False, 3) is True
    assert store.load().blocked == frozenset() and store.load().stale_groups == frozenset()


def test_the_operations_record(store: SqlRegistryStore) -> None:
    first = store.open_incident("g", "late_file", "p1", "detail", 10)
    second = store.open_incident("g", "late_file", "p2", "detail", 11)
    assert second > first
    resolved = store.resolve_incident(first, "ann", "looked", 12)
    assert (resolved.resolved_by, resolved.resolution, resolved.resolved_micros) == ("ann", "looked", 12)
    with pytest.raises(FailedPrecondition):
        store.resolve_incident(first, "ann", "again", 13)
    with pytest.raises(NotFound):
        store.resolve_incident(10**12, "ann", "", 13)
    assert [i.id for i in store.incidents(False)] == [second] and len(store.incidents(True)) == 2
    runs = [store.record_sync_run(SyncRun(group=g, started_micros=i, ended_micros=i + 1, outcome="ok")) for i, g in enumerate("aab")]
    assert [r.id for r in store.sync_runs("a", 10)] == [runs[1].id, runs[0].id]
    assert len(store.sync_runs("", 2)) == 2
    request = store.request_resync("g", "drift", 5)
    assert store.request_resync("g", "again", 6) == request
    assert [r.id for r in store.pending_resyncs()] == [request]
    store.ack_resync(request, 7)
    store.ack_resync(request, 8)  # idempotent
    assert store.pending_resyncs() == []
    with pytest.raises(NotFound):
        store.ack_resync(10**12, 9)
    assert store.last_validation(3) is None
    store.record_validation(3, None, 0, {}, 1)
    assert store.last_validation(3) == (None, 0, 1)
    store.record_validation(3, 0.5, 10, {"mismatch": 5}, 2)
    assert store.last_validation(3) == (0.5, 10, 2)


def test_the_first_deployment_claim_wins(store: SqlRegistryStore) -> None:
    assert store.claim_deployment("offline_root", "/a") == "/a"
    assert store.claim_deployment("offline_root", "/b") == "/a"


def test_coordination_heartbeats_one_leader_and_change_wake_ups(open_store: Callable[[], SqlRegistryStore]) -> None:
    one, two = open_store(), open_store()
    one.heartbeat(ReplicaInfo("r1", "127.0.0.1:1", 3, 100, 50, True))
    one.heartbeat(ReplicaInfo("r1", "127.0.0.1:2", 4, 200, 50, True))
    two.heartbeat(ReplicaInfo("r2", "127.0.0.1:3", 4, 201, 60, False))
    assert one.replicas() == [ReplicaInfo("r1", "127.0.0.1:2", 4, 200, 50, True), ReplicaInfo("r2", "127.0.0.1:3", 4, 201, 60, False)]
    assert one.try_lead() is True and one.try_lead() is True
    assert two.try_lead() is False  # one leader per registry
    one.close()
    wait_for(two.try_lead, timeout=10)  # the lease moves when its holder goes (once its session has ended)
    three = open_store()
    waker = threading.Timer(0.3, lambda: three.set_blocked(1, True, 1))
    began = time.monotonic()
    waker.start()
    two.wait_for_change(30)
    waker.join()
    assert time.monotonic() - began < 20  # woken by the change, not by the timeout


@pytest.mark.parametrize("text", ["nul\x00byte", "x" * 70_000])
def test_free_text_is_refused_alike_naming_the_field_and_nothing_is_written(store: SqlRegistryStore, text: str) -> None:
    registry = Registry(store)
    registry.apply([group()])
    before = store.load()
    calls: list[tuple[str, Callable[[], object]]] = [
        ("applied_by", lambda: registry.apply([group("h")], actor=text)),
        ("reason", lambda: registry.apply([group("h")], reason=text)),
        ("created_by", lambda: registry.create_manifest("m", ["g:amount"], actor=text)),
        ("description", lambda: registry.create_manifest("m", ["g:amount"], description=text)),
        ("actor", lambda: registry.record_offline_write("g", "amount", 1, "ingest", "rows 1", text)),
        ("actor", lambda: registry.delete_group("g", actor=text)),
    ]
    incident = store.open_incident("g", "late_file", "p", "d", 1)
    calls += [("resolved_by", lambda: store.resolve_incident(incident, text, "ok", 2)),
              ("resolution", lambda: store.resolve_incident(incident, "ann", text, 2)),
              ("reason", lambda: store.request_resync("g", text, 3))]
    for field, call in calls:
        with pytest.raises(InvalidArgument) as refused:
            call()
        assert refused.value.field == field and len(refused.value.message) < 200
    after = store.load()
    assert (after.revision, set(after.groups), after.manifests) == (before.revision, {"g"}, {})
    assert store.incidents(False)[0].resolved_micros is None and store.pending_resyncs() == []


def test_unicode_free_text_round_trips(store: SqlRegistryStore) -> None:
    registry = Registry(store)
    text = "Zoë — 検証 🚀 " + "ü" * 1000
    registry.apply([group()], actor=text, reason=text)
    registry.create_manifest("m", ["g:amount"], actor=text, description=text)
    entry = [h for h in registry.history("g", "amount").entries if h.action == "create"][0]
    assert (entry.actor, entry.reason) == (text, text)
    assert registry.snapshot().manifest("m").description == text
