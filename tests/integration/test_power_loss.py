"""Power loss, not just a process kill: the daemon's write-ahead log (store.wal_dir) lives on a FUSE filesystem
that holds unsynced file data in memory (tests/faults/powerloss_fs.py); cutting power kills it, so only what
was fsynced survives. (Only the WAL is on it: acknowledged publishes live there until a memtable flush, and
RocksDB's LOCK file needs fcntl locks that this small FUSE layer does not provide.) With the
WAL synced before acknowledging (the default) every acknowledged publish survives; with syncing off, the same
acknowledged publishes are lost — which a plain kill -9 could never show, since the OS would still flush them."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fsd.client import Client
from fsd.domain import ValueStatus
from fsd.registry.definitions import load_text
from tests.conftest import TYPES_REPO
from tests.daemon_process import DaemonProcess
from tests.helpers import all_types_table, seconds_ago

def fuse_available() -> bool:
    """FUSE needs /dev/fuse and libfuse2 (Debian: libfuse2; .ci/run installs it)."""
    try:
        import fuse  # noqa: F401  # pyflakes: ignore - fusepy loads libfuse with ctypes at import
    except (ImportError, OSError):
        return False
    return Path("/dev/fuse").exists() and shutil.which("umount") is not None


def mount(backing: Path, mountpoint: Path) -> subprocess.Popen[bytes]:
    mountpoint.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "tests.faults.powerloss_fs", str(backing), str(mountpoint)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not Path("/proc/mounts").read_text().count(str(mountpoint)):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the power-loss filesystem did not mount (FUSE unavailable?)")
        time.sleep(0.05)
    return proc


def power_cut(daemon: DaemonProcess, fs: subprocess.Popen[bytes], mountpoint: Path) -> None:
    daemon.kill9()
    fs.kill()  # unsynced data dies with it
    fs.wait(timeout=10)
    subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)


def publish_and_cut(tmp_path: Path, sync_writes: bool) -> tuple[int, int]:
    backing, mountpoint = tmp_path / "disk", tmp_path / "mnt"
    backing.mkdir(parents=True)
    fs = mount(backing, mountpoint)
    data = tmp_path / "data"
    daemon = DaemonProcess(data, env={"FSD_STORE_SYNC_WRITES": str(sync_writes).lower(), "FSD_STORE_WAL_DIR": str(mountpoint)})
    acked = []
    try:
        daemon.start(timeout=60)
        with Client(daemon.target, timeout=60) as client:
            client.apply(load_text(TYPES_REPO))
            for k in range(8):
                ids = list(range(k * 50 + 1, k * 50 + 51))
                client.publish("all_types", all_types_table(ids, [seconds_ago(1)] * 50), publish_id=f"p{k}")
                acked.append(ids)
    finally:
        power_cut(daemon, fs, mountpoint)
    # Power back on: the WAL device holds only what was synced.
    survivor = DaemonProcess(data, env={"FSD_STORE_WAL_DIR": str(backing)})
    try:
        survivor.start(timeout=60)
        with Client(survivor.target) as client:
            present = sum(
                int((client.get_features(["all_types:f_int"], {"entity_id": ids})["all_types:f_int"].statuses == ValueStatus.PRESENT).all())
                for ids in acked
            )
    finally:
        survivor.stop()
    return len(acked), present


@pytest.mark.skipif(not fuse_available(), reason="needs /dev/fuse")
def test_synced_wal_survives_power_loss_and_unsynced_does_not(tmp_path: Path) -> None:
    acknowledged, survived = publish_and_cut(tmp_path / "synced", sync_writes=True)
    assert (acknowledged, survived) == (8, 8)
    acknowledged, survived = publish_and_cut(tmp_path / "unsynced", sync_writes=False)
    print(f"power loss: synced WAL kept 8 of 8 acknowledged publishes; unsynced WAL kept {survived} of {acknowledged}")
    assert acknowledged == 8 and survived < acknowledged  # the test can tell the difference a kill -9 cannot
