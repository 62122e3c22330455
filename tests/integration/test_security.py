"""TLS, mutual TLS, scoped bearer tokens, and overload shedding — against real daemon processes."""
from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest

from fsd.errors import FsdError
from fsd.client import Client
from fsd.registry.definitions import load_text
from tests.conftest import TYPES_REPO
from tests.helpers import raises_status, all_types_table, seconds_ago

TOKENS = {"reader": "r" * 24 + "-read", "loader": "w" * 24 + "-write", "ops": "a" * 24 + "-admin"}


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=fsd-test-ca", cwd=d)
    for name, san in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "subjectAltName=DNS:client")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(san + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.pem",
                "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return d


def test_tls_serves_only_tls_clients(daemon_factory, pki: Path) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(env={"FSD_SERVER_TLS_CERT": str(pki / "server.pem"), "FSD_SERVER_TLS_KEY": str(pki / "server.key")})
    daemon.start(health_tls_ca=str(pki / "ca.pem"))
    with Client(daemon.target, tls_ca=str(pki / "ca.pem"), timeout=10) as client:
        assert client.list_groups() == []
    with Client(daemon.target, timeout=3) as plaintext, raises_status() as info:
        plaintext.list_groups()
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_requires_a_client_certificate(daemon_factory, pki: Path) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(env={"FSD_SERVER_TLS_CERT": str(pki / "server.pem"), "FSD_SERVER_TLS_KEY": str(pki / "server.key"),
                                 "FSD_SERVER_TLS_CLIENT_CA": str(pki / "ca.pem")})
    daemon.start(health_tls_ca=str(pki / "ca.pem"), health_cert=(str(pki / "client.pem"), str(pki / "client.key")))
    with Client(daemon.target, tls_ca=str(pki / "ca.pem"), tls_cert=str(pki / "client.pem"), tls_key=str(pki / "client.key")) as client:
        assert client.list_groups() == []
    with Client(daemon.target, tls_ca=str(pki / "ca.pem"), timeout=3) as anonymous, raises_status() as info:
        anonymous.list_groups()
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.fixture
def secured(daemon_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [
        {"name": "inference", "token": TOKENS["reader"], "scopes": ["read"]},
        {"name": "nightly-loader", "token": TOKENS["loader"], "scopes": ["write"]},
        {"name": "platform-ops", "token": TOKENS["ops"], "scopes": ["admin"]},
    ]}))
    return daemon_factory(env={"FSD_SERVER_TOKENS_FILE": str(tokens)}).start()


def test_scoped_tokens(secured) -> None:  # type: ignore[no-untyped-def]
    with Client(secured.target, token=TOKENS["ops"]) as ops:
        ops.apply(load_text(TYPES_REPO))
    with Client(secured.target, token=TOKENS["loader"]) as loader:
        assert loader.publish("all_types", all_types_table([1], [seconds_ago(1)])).rows_accepted == 1
        with raises_status() as denied:
            loader.apply(load_text(TYPES_REPO))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED and "'admin'" in denied.value.details()
    with Client(secured.target, token=TOKENS["reader"]) as reader:
        assert reader.get_features(["all_types:f_int"], {"entity_id": [1]})["all_types:f_int"].values.tolist() == [10]
        with raises_status() as denied:
            reader.publish("all_types", all_types_table([2], [seconds_ago(1)]))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    for token in (None, "not-a-token-at-all-xxxxxxxx"):
        with Client(secured.target, token=token or "") as anonymous, raises_status() as info:
            anonymous.get_features(["all_types:f_int"], {"entity_id": [1]})
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    log = secured.log()
    assert all(token not in log for token in TOKENS.values())  # never logged, denied or not


def test_overload_is_shed_fast_and_admitted_calls_complete(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    # The row cache off: admitted 5000-entity reads must do real work (RocksDB multi-gets) for the shed calls to
    # be told apart from them; from the cache they take about as long as a refusal's round trip.
    daemon = daemon_factory("overloaded", env={"FSD_SERVER_MAX_CONCURRENT_RPCS": "2", "FSD_SERVER_MAX_WORKERS": "2",
                                               "FSD_STORE_ROW_CACHE_MB": "0"}).start()
    with Client(daemon.target) as setup:
        setup.apply(load_text(TYPES_REPO))
        setup.publish("all_types", all_types_table(list(range(1, 5001)), [seconds_ago(1)] * 5000))
    results: list[tuple[str, float]] = []
    lock = threading.Lock()

    def hammer() -> None:
        with Client(daemon.target, timeout=30) as client:
            for _ in range(6):
                began = time.perf_counter()
                try:
                    client.get_features([f"all_types:{f}" for f in ("f_int", "f_string", "f_vec", "f_double")], {"entity_id": list(range(1, 5001))})
                    outcome = "ok"
                except FsdError as exc:
                    outcome = exc.code
                with lock:
                    results.append((outcome, time.perf_counter() - began))

    threads = [threading.Thread(target=hammer) for _ in range(4)]  # 2x the admitted concurrency
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = {o for o, _ in results}
    assert outcomes <= {"ok", "RESOURCE_EXHAUSTED"} and "ok" in outcomes and "RESOURCE_EXHAUSTED" in outcomes
    shed = sorted(d for o, d in results if o == "RESOURCE_EXHAUSTED")
    served = sorted(d for o, d in results if o == "ok")
    assert shed[len(shed) // 2] < served[len(served) // 2]  # rejected at once, not after queueing behind the admitted


def test_publish_streams_beyond_the_limit_are_shed(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    from fsd.client import table_to_ipc
    from fsd.v1 import serving_pb2, serving_pb2_grpc

    daemon = daemon_factory("one-publisher", env={"FSD_LIMITS_MAX_CONCURRENT_PUBLISHES": "1"}).start()
    with Client(daemon.target) as setup:
        setup.apply(load_text(TYPES_REPO))
    release = threading.Event()

    def slow_chunks():  # type: ignore[no-untyped-def]
        yield serving_pb2.PublishChunk(publish_id="long", group="all_types", arrow_ipc=table_to_ipc(all_types_table([1], [seconds_ago(1)])))
        release.wait(20)

    with grpc.insecure_channel(daemon.target) as channel:
        stub = serving_pb2_grpc.FeatureStoreStub(channel)
        first = stub.Publish.future(slow_chunks(), timeout=30)
        with Client(daemon.target) as client:
            deadline = time.monotonic() + 10
            while client.publish_status("long").last_durable_sequence < 0:  # the first stream holds the only slot
                assert time.monotonic() < deadline
                time.sleep(0.02)
            with raises_status() as info:
                client.publish("all_types", all_types_table([2], [seconds_ago(1)]))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_concurrent_publishes" in info.value.details()
            assert client.get_features(["all_types:f_int"], {"entity_id": [1]})["all_types:f_int"].values.tolist() == [10]  # reads still served
        release.set()
        assert first.result().rows_accepted == 1
