"""The on-call status page, loaded by a real browser (headless Chromium) from a test daemon: groups, versions and
states, freshness, sync runs, incidents, validations and lineage are on it, escaped; tokens guard it."""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest

from fsd.client import Client
from fsd.offline.store import OfflineStore
from fsd.registry.definitions import load_text
from fsd.sync.loader import sync_group
from fsd.client.training import ingest_offline
from tests.helpers import MICROS, now_micros

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TS = pa.timestamp("us", tz="UTC")
REPO = """
feature_groups:
  - name: velocity
    entity_keys: [{name: customer_id, type: int64}]
    owner: "<script>alert(1)</script>"
    source: parquet://offline/payments
    max_age: 10m
    features:
      - {name: count_1h, dtype: int64, transformation: "count(*)"}
"""


def browser(url: str, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",  # type: ignore[list-item]
                           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
                           f"--user-data-dir={out / 'chrome-profile'}", *args, url], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_status_page_in_a_real_browser(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory().start()
    with Client(daemon.target) as client:
        client.apply(load_text(REPO))
        store = OfflineStore(client.get_deployment().offline_root)
        t = now_micros() - 60 * MICROS
        ingest_offline(client, store, "velocity", pa.table({"customer_id": pa.array([1, 2], pa.int64()), "event_timestamp": pa.array([t, t], TS),
                                                            "count_1h": pa.array([3, 4], pa.int64())}))
        assert sync_group(client, store, "velocity").outcome == "success"
        client.validate("velocity", sample=10)
        wrong_keys = pa.table({"id": pa.array([1], pa.int64()), "event_timestamp": pa.array([t], TS), "count_1h": pa.array([1], pa.int64())})
        with pytest.raises(Exception):
            client.publish("velocity", wrong_keys)  # blocked: opens an entity_key_mismatch incident
    url = f"http://127.0.0.1:{daemon.metrics_port}/"
    dom = browser(url, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-1000:]
    html = dom.stdout
    for fragment in ("fsd status", "velocity:count_1h@1", "SERVING", "success", "entity_key_mismatch", "100.00% of 2",
                     "parquet://offline/payments", "count(*)", "/velocity/count_1h/v1/", "rocksdb"):
        assert fragment in html, fragment
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    ARTIFACTS.mkdir(exist_ok=True)
    shot = browser(url, tmp_path, "--window-size=1400,1100", f"--screenshot={ARTIFACTS / 'status-page.png'}")
    assert shot.returncode == 0 and (ARTIFACTS / "status-page.png").stat().st_size > 10_000


def test_with_tokens_the_page_needs_the_read_scope(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [{"name": "reader", "token": "r" * 32, "scopes": ["read"]}]}))
    daemon = daemon_factory(env={"FSD_SERVER_TOKENS_FILE": str(tokens)})
    daemon.start(health_tls_ca=None)
    url = f"http://127.0.0.1:{daemon.metrics_port}/"
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(url, timeout=10)
    assert denied.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": "Bearer " + "r" * 32})
    assert b"fsd status" in urllib.request.urlopen(request, timeout=10).read()
    metrics_url = f"http://127.0.0.1:{daemon.metrics_port}/metrics"
    with pytest.raises(urllib.error.HTTPError) as denied_metrics:  # /metrics names groups: the read scope, like the page
        urllib.request.urlopen(metrics_url, timeout=10)
    assert denied_metrics.value.code == 401
    metrics = urllib.request.urlopen(urllib.request.Request(metrics_url, headers={"Authorization": "Bearer " + "r" * 32}), timeout=10).read().decode()
    assert 'fsd_build_info{' in metrics and "process_cpu_seconds_total" in metrics
