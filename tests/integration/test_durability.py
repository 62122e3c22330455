"""Crash safety and backups: kill -9 loops (short in CI, long with -m slow), a backup taken under publishing
load that restores to a prefix of acknowledged publishes, and results that do not depend on the machine's TZ."""
from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import grpc
import pytest

from fsd.client import Client
from fsd.domain import ValueStatus
from fsd.errors import FsdError, InvalidArgument
from fsd.registry.definitions import load_text
from fsd.serving.backup import confined
from tests.conftest import TYPES_REPO
from tests.helpers import all_types_table, seconds_ago


@pytest.fixture
def daemon_workers(both_serving_modes: int) -> int:
    """This suite runs against one daemon process and against `fsd serve --workers 2`."""
    return both_serving_modes

ROWS = 100


def batch_ids(k: int) -> list[int]:
    return list(range(k * ROWS + 1, (k + 1) * ROWS + 1))


class Publisher(threading.Thread):
    """Publishes batch k (rows k*100+1..) with f_int = k, chunked, until stopped; remembers what was acknowledged."""

    def __init__(self, target: str, start_at: int, chunk_rows: int) -> None:
        super().__init__(daemon=True)
        self.target, self.next, self.chunk_rows = target, start_at, chunk_rows
        self.acked: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with Client(self.target, timeout=10) as client:
            while not self.stop.is_set():
                k = self.next
                table = all_types_table(batch_ids(k), [seconds_ago(1)] * ROWS, f_int=__import__("pyarrow").array([k] * ROWS))
                try:
                    client.publish("all_types", table, publish_id=f"batch-{k}", chunk_rows=self.chunk_rows)
                except FsdError:
                    return  # the daemon died under us: this batch is not acknowledged
                self.acked.append(k)
                self.next += 1


def presence(client: Client, k: int, chunk_rows: int) -> list[int]:
    """Present rows per chunk of batch k."""
    statuses = client.get_features(["all_types:f_int"], {"entity_id": batch_ids(k)})["all_types:f_int"].statuses
    present = statuses == ValueStatus.PRESENT
    return [int(present[i:i + chunk_rows].sum()) for i in range(0, ROWS, chunk_rows)]


def crash_loop(daemon_factory, tmp_path: Path, cycles: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    daemon = daemon_factory("crashy")
    daemon.start()
    with Client(daemon.target) as client:
        client.apply(load_text(TYPES_REPO))
    acked: set[int] = set()
    attempted = 0
    next_batch = 0
    rng = random.Random(7)
    for _ in range(cycles):
        publisher = Publisher(daemon.target, next_batch, chunk_rows=25)
        publisher.start()
        time.sleep(rng.uniform(0.2, 0.8))
        daemon.kill9()
        publisher.join(timeout=30)
        acked.update(publisher.acked)
        attempted = max(attempted, publisher.next + 1)
        next_batch = publisher.next + 1
        daemon.start()
        with Client(daemon.target) as client:
            for k in range(attempted):
                chunks = presence(client, k, 25)
                assert all(c in (0, 25) for c in chunks), f"batch {k}: a chunk is half-written: {chunks}"
                if k in acked:
                    assert chunks == [25, 25, 25, 25], f"acknowledged batch {k} lost data after kill -9: {chunks}"
    daemon.stop()
    return len(acked), attempted


def test_kill_9_loop_short(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    acknowledged, _ = crash_loop(daemon_factory, tmp_path, int(os.environ.get("FSDTEST_CRASH_CYCLES", "3")))
    assert acknowledged > 0


@pytest.mark.slow
def test_kill_9_loop_long(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    acknowledged, attempted = crash_loop(daemon_factory, tmp_path, int(os.environ.get("FSDTEST_CRASH_CYCLES_LONG", "50")))
    print(f"kill -9 loop: {acknowledged} acknowledged publishes checked over {attempted} attempted, lost 0")


def test_backup_under_load_restores_a_prefix_of_acknowledged_publishes(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory("primary").start()
    with Client(daemon.target) as client:
        client.apply(load_text(TYPES_REPO))
    publisher = Publisher(daemon.target, 0, chunk_rows=ROWS)
    publisher.start()
    while len(publisher.acked) < 5:
        time.sleep(0.01)
    acked_before = set(publisher.acked)
    with Client(daemon.target) as client:
        info = client.backup("under-load")
    while len(publisher.acked) < len(acked_before) + 3:
        time.sleep(0.01)
    publisher.stop.set()
    publisher.join()
    restored = daemon_factory("restored")
    from fsd.serving.backup import restore_backup

    restore_backup(Path(info.path), restored.data_dir)
    restored.start()
    with Client(restored.target) as client:
        present = {k: presence(client, k, ROWS)[0] for k in range(publisher.next)}
    assert all(v in (0, ROWS) for v in present.values())  # never half a publish
    assert {k for k, v in present.items() if v} >= acked_before
    got = sorted(k for k, v in present.items() if v)
    assert got == list(range(len(got)))  # a prefix: no later publish without the earlier ones


def test_backup_names_are_confined(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "base").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "base" / "link")
    for bad in ("../x", "a/b", "..", "link", "/etc"):
        with pytest.raises(InvalidArgument):
            confined(tmp_path / "base", bad)
    assert confined(tmp_path / "base", "nightly-2026.11.25") == (tmp_path / "base" / "nightly-2026.11.25").resolve()


def test_results_do_not_depend_on_the_machine_timezone(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    answers = []
    t = seconds_ago(30)
    for zone in ("UTC", "Asia/Kolkata"):
        daemon = daemon_factory(f"tz-{zone.replace('/', '-')}", env={"TZ": zone}).start()
        with Client(daemon.target) as client:
            client.apply(load_text(TYPES_REPO))
            client.publish("all_types", all_types_table([1, 2], [t, t - 7200 * 1_000_000]))
            got = client.get_features(["all_types:f_int", "all_types:f_string"], {"entity_id": [1, 2]})
            answers.append([(c.values if isinstance(c.values, list) else c.values.tolist(), c.statuses.tolist(), c.event_time_micros.tolist())
                            for c in got.features.values()])
    assert answers[0] == answers[1]
