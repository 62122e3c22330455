"""Read-scoped RPCs change nothing: status, listings and plans leave the registry, flags and requests as they were."""
from __future__ import annotations

import pyarrow as pa

from fsd.client import Client
from fsd.registry.definitions import load_text
from tests.helpers import MICROS, now_micros

BREACHED = """
feature_groups:
  - name: late
    entity_keys: [{name: id, type: int64}]
    max_age: 1s
    sync_interval: 1s
    freshness_policy: {max_lag: 1s, max_stale_ratio: 0.1, on_inconsistency: resync}
    features:
      - {name: x, dtype: double}
"""


def state(client: Client) -> tuple[object, ...]:
    status = client.status()
    return (client.get_group("late"), [g.stale for g in status.groups], client.pending_resyncs(), client.incidents(True),
            client.sync_runs(), client.list_manifests(), client.history("late").entries)


def test_get_status_and_other_reads_have_no_side_effects(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    # The background monitor never runs here, so anything that changes is a read's doing.
    daemon = daemon_factory(env={"FSD_MONITOR_FRESHNESS_INTERVAL_SECONDS": "3600", "FSD_MONITOR_VALIDATE_INTERVAL_SECONDS": "0"}).start()
    with Client(daemon.target) as client:
        groups = load_text(BREACHED)
        client.apply(groups)
        old = now_micros() - 600 * MICROS  # ten minutes old: over max lag and max age
        client.publish("late", pa.table({"id": pa.array([1, 2], pa.int64()), "event_timestamp": pa.array([old, old], pa.timestamp("us", tz="UTC")),
                                         "x": [1.0, 2.0]}))
        before = state(client)
        report = client.status("late")
        assert report.groups[0].breaches, "the status computes the breach it would act on"
        for _ in range(3):
            client.status()
            client.list_groups()
            client.plan(groups)
            client.get_features(["late:x"], {"id": [1, 2, 3]})
            client.publish_status("nope")
        after = state(client)
    assert after == before
    assert after[1] == [False] and after[2] == []  # not marked stale, no resync requested
