"""Freshness signals, consistency validation with block/recover, skew, gated promotion, /metrics — real daemon."""
from __future__ import annotations

import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pytest

from fsd import codec
from fsd.client import Client
from fsd.codec import _rows_py, _values_py
from fsd.domain import ValueStatus
from fsd.offline.store import OfflineStore
from fsd.online.rocksdb import RocksDbOnlineStore
from fsd.registry.definitions import load_text
from fsd.sync.loader import sync_group
from fsd.sync.scheduler import SyncScheduler
from fsd.client.training import ingest_offline
from tests.helpers import raises_status, MICROS, now_micros, wait_for

TS = pa.timestamp("us", tz="UTC")
FAST = """
feature_groups:
  - name: fast
    entity_keys: [{name: customer_id, type: int64}]
    max_age: 2s
    sync_interval: 1s
    freshness_policy: {max_missed_refreshes: 1, max_stale_ratio: 0.5, min_consistency: 0.99, on_inconsistency: block}
    features:
      - {name: amount, dtype: double, transformation: "sum(x)"}
"""


def amounts(ids: list[int], values: list[float], age_s: float = 0.0) -> pa.Table:
    t = now_micros() - int(age_s * MICROS)
    return pa.table({"customer_id": pa.array(ids, pa.int64()), "event_timestamp": pa.array([t] * len(ids), TS), "amount": values})


@pytest.fixture
def offline_daemon(daemon_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(**env: str):  # type: ignore[no-untyped-def]
        return daemon_factory(env={"FSD_STORE_OFFLINE_ROOT": str(tmp_path / "offline"), **env}).start()
    return make


def test_stopped_sync_raises_lag_missed_refreshes_stale_ratio_and_a_resync(offline_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    daemon = offline_daemon()
    store = OfflineStore(tmp_path / "offline")
    with Client(daemon.target) as client:
        client.apply(load_text(FAST))
        ingest_offline(client, store, "fast", amounts(list(range(1, 101)), [float(i) for i in range(1, 101)]))
        assert sync_group(client, store, "fast").outcome == "success"
        fresh = client.status("fast").groups[0]
        assert not fresh.stale and fresh.missed_refreshes == 0
        # Syncing stops. Within a few seconds the 1 s interval is missed and values pass their 2 s max age.
        status = wait_for(lambda: (g := client.status("fast").groups[0]).stale and g, step=0.1)
        assert status.missed_refreshes >= 2 and status.seconds_since_sync > 2 and status.freshness_lag_seconds > 2
        assert status.features[0].stale_entity_ratio == 1.0 and status.features[0].sampled_values == 100
        assert any("missed refreshes" in b for b in status.breaches)
        served = client.get_features(["fast:amount"], {"customer_id": [1, 999]})["fast:amount"]
        assert served.statuses.tolist() == [ValueStatus.STALE, ValueStatus.NOT_FOUND]
        [request] = client.pending_resyncs()
        assert request.group == "fast"
        # The scheduler honours the forced resync and acknowledges it.
        ingest_offline(client, store, "fast", amounts([1], [1000.0]))
        runs = SyncScheduler(client, store).run_due()
        assert [(r.group, r.forced, r.outcome) for r in runs] == [("fast", True, "success")]
        assert not client.pending_resyncs()
    assert "breached its freshness policy" in daemon.log() and daemon.log().count("breached its freshness policy") == 1


def corrupt(data_dir: Path, group_id: int, slot: int, ids: list[int]) -> None:
    """Rewrite some online values behind the daemon's back, through the store interface."""
    store = RocksDbOnlineStore(str(data_dir / "online"))
    keys = codec.entity_keys(group_id, codec.encode_entities([np.array(ids, dtype=np.int64)], [False]))
    puts = []
    for key, row in zip(keys, store.get_many(keys)):
        entries = _rows_py.parse_row(row)
        event, created = _rows_py.stamp(entries[slot])
        entries[slot] = _values_py.encode_values(2, np.array([-1.0]), np.zeros(1, bool), np.array([event]), created)[0]
        puts.append((key, _rows_py.build_row(entries)))
    store.write_batch(puts)
    store.close()


def test_validate_counts_mismatches_blocks_and_recovers(offline_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    daemon = offline_daemon()
    store = OfflineStore(tmp_path / "offline")
    slow = FAST.replace("max_age: 2s", "max_age: 1d").replace("sync_interval: 1s", "sync_interval: 1h")
    with Client(daemon.target) as client:
        client.apply(load_text(slow))
        ids = list(range(1, 201))
        ingest_offline(client, store, "fast", amounts(ids, [float(i) for i in ids]))
        sync_group(client, store, "fast")
        clean = client.validate("fast", sample=200).features[0]
        assert (clean.sampled, clean.matching, clean.consistency) == (200, 200, 1.0)
        # An entity the offline store never had: entity-key drift. Newer offline rows not yet synced: stale.
        client.publish("fast", amounts([5000], [1.0]))
        ingest_offline(client, store, "fast", amounts([1, 2, 3], [-5.0, -5.0, -5.0]))
        slot = client.history("fast", "amount").versions[0].slot
        group_id = 1
    daemon.terminate()
    corrupt(daemon.data_dir, group_id, slot, [10, 11, 12, 13, 14])
    daemon.start()
    with Client(daemon.target) as client:
        report = client.validate("fast", sample=1000)  # more than the 201 rows: the drift scan sees them all
        f = report.features[0]
        assert (f.mismatches.value_differs, f.mismatches.stale, f.mismatches.missing_online, f.mismatches.version_differs) == (5, 3, 0, 0)
        assert f.mismatches.entity_key_drift == 1
        assert (f.sampled, f.consistency) == (200, pytest.approx(192 / 200))
        assert any("blocked fast:amount@1" in a for a in report.actions_taken)
        blocked = client.get_features(["fast:amount"], {"customer_id": [10, 20]})["fast:amount"]
        assert blocked.statuses.tolist() == [ValueStatus.BLOCKED] * 2 and blocked.values.tolist() == [0.0, 0.0]
        # Recovery: a forced resync rewrites online from offline, and the next validation unblocks.
        sync_group(client, store, "fast", full=True)
        healed = client.validate("fast", sample=200)
        assert healed.features[0].mismatches.value_differs == 0 and healed.features[0].mismatches.stale == 0
        assert any("unblocked" in a for a in healed.actions_taken) or healed.features[0].consistency < 0.99
        client.set_blocked("fast", "amount", 1, False)
        assert client.get_features(["fast:amount"], {"customer_id": [10]})["fast:amount"].values.tolist() == [10.0]


def test_skew_raises_psi_only_for_a_shifted_distribution(offline_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    daemon = offline_daemon(FSD_MONITOR_SERVED_SAMPLE_RATE="1.0")
    store = OfflineStore(tmp_path / "offline")
    repo = FAST.replace("max_age: 2s", "max_age: 1d") + FAST.replace("name: fast", "name: steady").replace("max_age: 2s", "max_age: 1d").split("feature_groups:\n")[1]
    rng = np.random.default_rng(5)
    ids = list(range(1, 2001))
    with Client(daemon.target) as client:
        client.apply(load_text(repo))
        for group in ("fast", "steady"):
            ingest_offline(client, store, group, amounts(ids, rng.normal(0, 1, len(ids)).tolist()))
            sync_group(client, store, group)
        client.publish("fast", amounts(ids, rng.normal(3, 1, len(ids)).tolist()))  # serving drifted away from training
        for start in range(0, 2000, 100):
            client.get_features(["fast:amount", "steady:amount"], {"customer_id": ids[start:start + 100]})
        shifted = client.validate("fast", sample=100, skew=True, action="report").features[0]
        steady = client.validate("steady", sample=100, skew=True, action="report").features[0]
    assert shifted.psi > 0.2 and shifted.skewed
    assert 0 <= steady.psi < 0.2 and not steady.skewed


def test_promotion_is_gated_on_consistency(offline_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    daemon = offline_daemon(FSD_MONITOR_MIN_PROMOTION_CONSISTENCY="0.995")
    store = OfflineStore(tmp_path / "offline")
    slow = FAST.replace("max_age: 2s", "max_age: 1d")
    with Client(daemon.target) as client:
        client.apply(load_text(slow))
        client.apply(load_text(slow.replace("sum(x)", "sum(x) filter (where ok)")))
        ids = list(range(1, 101))
        table = amounts(ids, [1.0] * 100)
        ingest_offline(client, store, "fast", table, versions={"amount": 2})
        client.publish("fast", table.slice(0, 50), feature_versions={"amount": 2})  # half is missing online
        with raises_status() as never:
            client.promote("fast", "amount", 2)
        assert "never validated" in never.value.details()
        report = client.validate("fast", feature="amount", versions=[2], sample=100, action="report").features[0]
        assert report.consistency == pytest.approx(0.5)
        with raises_status() as low:
            client.promote("fast", "amount", 2)
        assert low.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "below the promotion gate" in low.value.details()
        sync_group(client, store, "fast")
        assert client.validate("fast", feature="amount", versions=[2], sample=100).features[0].consistency == 1.0
        assert client.promote("fast", "amount", 2).state == 2


def test_forced_promotion_is_recorded(offline_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = offline_daemon(FSD_MONITOR_MIN_PROMOTION_CONSISTENCY="0.995")
    with Client(daemon.target) as client:
        client.apply(load_text(FAST))
        client.apply(load_text(FAST.replace("sum(x)", "sum(y)")))
        client.publish("fast", amounts([1], [1.0]), feature_versions={"amount": 2})
        client.promote("fast", "amount", 2, force=True, actor="oncall", reason="incident 7")
        entry = [e for e in client.history("fast", "amount").entries if e.action == "promote"][-1]
        assert "gate overridden with --force" in entry.detail and entry.actor == "oncall"


def test_metrics_endpoint_exports_signals_and_latency(offline_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    daemon = offline_daemon()
    store = OfflineStore(tmp_path / "offline")
    with Client(daemon.target) as client:
        client.apply(load_text(FAST))
        ingest_offline(client, store, "fast", amounts([1, 2], [1.0, 2.0]))
        sync_group(client, store, "fast")
        client.get_features(["fast:amount"], {"customer_id": [1]})
        client.status()
    assert daemon.metrics_port
    labelled = 'fsd_stale_entity_ratio{feature="amount",group="fast",version="1"}'  # by what a reader knows, not by slot

    def scrape() -> str | None:
        text = urllib.request.urlopen(f"http://127.0.0.1:{daemon.metrics_port}/metrics", timeout=10).read().decode()
        return text if labelled in text else None

    body = wait_for(scrape, step=0.2)
    for name in ("fsd_freshness_lag_seconds", "fsd_seconds_since_sync", "fsd_missed_refreshes",
                 "fsd_sync_delay_seconds", 'fsd_request_seconds_bucket{code="OK",le="0.001",method="GetFeatures"}',
                 'fsd_publish_rows_total{group="fast",outcome="accepted"}', "fsd_skew_samples_dropped_total 0.0"):
        assert name in body, name


NO_POLICY = """
feature_groups:
  - name: plain
    entity_keys: [{name: customer_id, type: int64}]
    max_age: 1h
    sync_interval: 1s
    features:
      - {name: amount, dtype: double}
"""


def test_a_group_without_a_policy_still_alerts_when_never_synced_or_refreshes_are_missed(offline_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Safe defaults (#24): no freshness_policy is not "nothing checked". Never synced, two missed refreshes and a
    lag past max age fail `fsd status --check`; the default only alerts, it never marks served values STALE."""
    import subprocess
    import sys

    daemon = offline_daemon()
    store = OfflineStore(tmp_path / "offline")

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fsd.cli", "status", "--check", "--target", daemon.target], capture_output=True, text=True, timeout=60)

    with Client(daemon.target) as client:
        client.apply(load_text(NO_POLICY))
        never = wait_for(lambda: (g := client.status("plain").groups[0]).alerts and g)
        assert never.health == "fail" and any("never synced" in a for a in never.alerts) and not never.stale
        refused = check()
        assert refused.returncode == 4 and "never synced" in refused.stderr, refused.stderr
        ingest_offline(client, store, "plain", amounts([1, 2], [1.0, 2.0]))
        assert sync_group(client, store, "plain").outcome == "success"
        healthy = wait_for(lambda: (g := client.status("plain").groups[0]).health == "ok" and g)
        assert healthy.alerts == () and check().returncode == 0
        # The loader stops: after two 1 s intervals the default limit alerts, and the values are still PRESENT.
        missed = wait_for(lambda: (g := client.status("plain").groups[0]).alerts and g, timeout=30, step=0.2)
        assert missed.missed_refreshes >= 2 and "missed refreshes" in missed.alerts[0] and not missed.stale
        assert client.get_features(["plain:amount"], {"customer_id": [1]})["plain:amount"].status_names() == ["PRESENT"]
        failed = check()
        assert failed.returncode == 4 and "missed refreshes" in failed.stderr


def test_lag_past_max_age_alerts_without_a_policy(offline_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = offline_daemon()
    with Client(daemon.target) as client:
        client.apply(load_text(NO_POLICY.replace("sync_interval: 1s", "sync_interval: 1d")))
        client.publish("plain", amounts([1], [1.0], age_s=7200))  # two hours old, max age one hour
        status = wait_for(lambda: (g := client.status("plain").groups[0]).alerts and g)
        assert any("max age" in a for a in status.alerts) and status.health == "fail"


def test_a_taken_metrics_port_is_said_at_start_with_the_flag_that_fixes_it(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    first = daemon_factory("first").start()
    assert first.metrics_port
    second = daemon_factory("second", env={"FSD_SERVER_METRICS_PORT": str(first.metrics_port)}).start()
    with Client(second.target) as client:
        assert client.status() is not None  # it serves; only metrics and the page are off, and it says so
    out = wait_for(lambda: "DISABLED" in (text := second.log()) and text)
    assert "--metrics-port 0" in out and "METRICS AND STATUS PAGE DISABLED" in out
