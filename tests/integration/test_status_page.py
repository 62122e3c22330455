"""The on-call status page, loaded by a real browser (headless Chromium) from a test daemon: groups, versions and
states, freshness, sync runs, incidents, validations and lineage are on it, escaped; tokens guard it."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
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
  - name: idle
    entity_keys: [{name: customer_id, type: int64}]
    sync_interval: 1h
    features:
      - {name: score, dtype: double}
"""


def browser(url: str, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",  # type: ignore[list-item]
                           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
                           f"--user-data-dir={out / 'chrome-profile'}", *args, url], capture_output=True, text=True, timeout=120)


def scroll_width(url: str, profile: Path, window: int) -> tuple[int, int]:
    """(document width, viewport width) of the loaded page in headless Chromium, read over the DevTools protocol (the
    page itself runs no script)."""
    import asyncio

    import aiohttp

    proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",  # type: ignore[list-item]
                             "--remote-debugging-port=0", "--remote-allow-origins=*", f"--window-size={window},900", f"--user-data-dir={profile}", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            assert time.monotonic() < deadline and proc.poll() is None, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])

        async def measure() -> tuple[int, int]:
            async with aiohttp.ClientSession() as session:
                for _ in range(100):
                    targets = await (await session.get(f"http://127.0.0.1:{port}/json/list")).json()
                    pages = [t for t in targets if t.get("type") == "page" and t.get("url", "").startswith("http")]
                    if pages:
                        break
                    await asyncio.sleep(0.1)
                async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    for attempt in range(100):
                        await ws.send_json({"id": attempt, "method": "Runtime.evaluate", "params": {
                            "expression": "document.readyState === 'complete' ? [document.documentElement.scrollWidth, window.innerWidth] : null",
                            "returnByValue": True}})
                        while True:
                            message = await ws.receive_json()
                            if message.get("id") == attempt:
                                break
                        value = message["result"]["result"].get("value")
                        if value:
                            return int(value[0]), int(value[1])
                        await asyncio.sleep(0.1)
            raise AssertionError("the page never finished loading")

        return asyncio.run(measure())
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_status_page_in_a_real_browser(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(env={"FSD_MONITOR_HISTORY_INTERVAL_SECONDS": "0.2"}).start()
    with Client(daemon.target) as client:
        client.apply(load_text(REPO))
        store = OfflineStore(client.get_deployment().offline_root)
        t = now_micros() - 60 * MICROS
        ingest_offline(client, store, "velocity", pa.table({"customer_id": pa.array([1, 2], pa.int64()), "event_timestamp": pa.array([t, t], TS),
                                                            "count_1h": pa.array([3, 4], pa.int64())}))
        assert sync_group(client, store, "velocity").outcome == "success"
        client.validate("velocity", sample=10)
        client.create_manifest("model", ["velocity:count_1h"])
        for _ in range(20):  # serving traffic for the QPS and p99 charts
            client.get_features(["velocity:count_1h"], {"customer_id": [1, 2]})
        time.sleep(1.0)  # a few history samples
        wrong_keys = pa.table({"id": pa.array([1], pa.int64()), "event_timestamp": pa.array([t], TS), "count_1h": pa.array([1], pa.int64())})
        with pytest.raises(Exception):
            client.publish("velocity", wrong_keys)  # blocked: opens an entity_key_mismatch incident
    url = f"http://127.0.0.1:{daemon.metrics_port}/"
    dom = browser(url, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-1000:]
    html = dom.stdout
    for fragment in ("fsd status", "velocity:count_1h@1", "SERVING", "success", "entity_key_mismatch", "100.00% of 2",
                     "parquet://offline/payments", "count(*)", "/velocity/count_1h/v1/", "rocksdb",
                     '<meta http-equiv="refresh" content="30">',  # reloads itself
                     "1 open incident", '<span class="pill fail">FAIL</span>',  # the incident makes the group red
                     "Manifests and the versions they pin", "model@1", "velocity:count_1h@1</span> <span class=\"ok\">SERVING",
                     "stale (sampled)", "PSI", "<svg",
                     "never synced: no value online and no successful sync",  # red without any policy written
                     '<span class="pill fail">FAIL</span> 2 group(s)', "freshness lag by group", "serving QPS", "serving p99 latency", "sync outcomes"):
        assert fragment in html, fragment
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    ARTIFACTS.mkdir(exist_ok=True)
    shot = browser(url, tmp_path, "--window-size=1280,1600", f"--screenshot={ARTIFACTS / 'status-page.png'}")
    assert shot.returncode == 0 and (ARTIFACTS / "status-page.png").stat().st_size > 10_000
    width, viewport = scroll_width(url, tmp_path / "cdp", 1280)
    assert width <= viewport, f"the page is {width} px wide in a {viewport} px window"


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
