"""The served-values sample is decoded off the request path, yet a reader sees every sample offered before it."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from fsd.client import table_to_ipc
from fsd.domain import DType, EntityKeySpec, FeatureSpec, FixedClock, GroupSpec, KeyType
from fsd.monitor.skew import ServedValues
from fsd.online.memory import MemoryOnlineStore
from fsd.registry.registry import Registry
from fsd.publish.publisher import Publisher
from tests.local import read_features

NOW = 1_800_000_000_000_000
GROUP = GroupSpec("g", (EntityKeySpec("id", KeyType.INT64),), (FeatureSpec("x", DType.DOUBLE), FeatureSpec("s", DType.STRING)))


def test_offered_rows_are_decoded_and_seen_by_the_next_reader(tmp_path: Path) -> None:
    registry = Registry(str(tmp_path / "r.sqlite"))
    registry.apply([GROUP])
    store, clock = MemoryOnlineStore(), FixedClock(NOW)
    rows = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "event_timestamp": pa.array([NOW] * 3, pa.timestamp("us", tz="UTC")),
                     "x": [1.5, None, 3.5], "s": ["a", "b", "c"]})
    Publisher(store, registry.snapshot, clock).begin("p", "g").write_chunk(0, table_to_ipc(rows))
    served = ServedValues(rate=1.0)
    for _ in range(3):
        read_features(store, registry.snapshot(), clock, ["g:x", "g:s"], {"id": [1, 2, 3, 4]}, keep=served.offer)
    slot = registry.snapshot().resolve("g:x").slot
    assert sorted(served.values(slot).tolist()) == [1.5, 1.5, 1.5, 3.5, 3.5, 3.5]  # nulls, missing and strings left out
    served.close()


def test_a_full_queue_drops_samples_instead_of_blocking() -> None:
    served = ServedValues(rate=1.0, max_pending=0)
    served.offer(object())  # type: ignore[arg-type]
    assert served.dropped == 1


def test_an_undecodable_sample_is_logged_and_sampling_goes_on(caplog) -> None:  # type: ignore[no-untyped-def]
    served = ServedValues(rate=1.0)
    served.offer(object())  # type: ignore[arg-type]  # decode_rows fails on it
    assert served.values(1).tolist() == []
    assert "decoding a served-values sample failed" in caplog.text
    served.close()
