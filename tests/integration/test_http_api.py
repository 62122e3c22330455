"""The Feast-compatible HTTP/JSON endpoint (`fsd serve --http-port`), through a plain HTTP client: Feast's request
and response shapes, the same names, statuses, tokens, limits and publish rules as gRPC, and clear errors."""
from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fsd.client import Client
from fsd.examples import FRAUD_REPO
from fsd.registry.definitions import load_repo
from tests.daemon_process import DaemonProcess

TOKENS = {"reader": "r" * 24 + "-read", "loader": "w" * 24 + "-write", "ops": "a" * 24 + "-admin"}


def post(daemon: DaemonProcess, path: str, body: object, token: str = "", raw: bytes | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{daemon.http_port}{path}", data=data, method="POST",
                                     headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def velocity_push(ids: list[int], counts: list[object]) -> dict:  # type: ignore[type-arg]
    at = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)).isoformat()
    return {"push_source_name": "transaction_velocity", "to": "online",
            "df": {"customer_id": ids, "event_timestamp": [at] * len(ids), "txn_count_1h": counts,
                   "txn_amount_sum_1h": [1.5] * len(ids), "avg_amount_24h": [2.5] * len(ids), "last_merchant_category": ["5411"] * len(ids)}}


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def http_daemon(request, daemon_factory) -> DaemonProcess:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(workers=request.param, extra_args=["--http-port", "0"]).start()
    with Client(daemon.target) as client:
        client.apply(load_repo(FRAUD_REPO))
    return daemon


def test_push_then_get_online_features_in_feasts_shapes_with_grpcs_names_and_statuses(http_daemon: DaemonProcess) -> None:
    status, pushed = post(http_daemon, "/push", velocity_push([1, 2], [7, 9]))
    assert status == 200 and pushed["rows_accepted"] == 2 and pushed["rows_rejected"] == 0
    features = ["transaction_velocity:txn_count_1h", "transaction_velocity:avg_amount_24h"]
    status, body = post(http_daemon, "/get-online-features", {"features": features, "entities": {"customer_id": [1, 2, 404]}})
    assert status == 200
    assert body["metadata"]["feature_names"] == ["customer_id", *features]
    keys, counts, averages = body["results"]
    assert keys["values"] == [1, 2, 404]
    assert counts["values"] == [7, 9, None] and counts["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert averages["values"] == [2.5, 2.5, None] and counts["event_timestamps"][2] is None
    assert dt.datetime.fromisoformat(counts["event_timestamps"][0].replace("Z", "+00:00")) < dt.datetime.now(dt.timezone.utc)
    with Client(http_daemon.target) as client:  # the same names and statuses as a gRPC client gets
        served = client.get_features(features, {"customer_id": [1, 2, 404]})
        assert list(served.features) == features
        assert served[features[0]].status_names() == counts["statuses"]
        client.create_manifest("fraud_model", features)
    status, by_service = post(http_daemon, "/get-online-features", {"feature_service": "fraud_model", "entities": {"customer_id": [2]}})
    assert status == 200 and by_service["metadata"]["feature_names"] == ["customer_id", *features]
    assert by_service["metadata"]["manifest"] == "fraud_model@1" and by_service["metadata"]["versions"] == {f: 1 for f in features}
    assert by_service["results"][1]["values"] == [9]


def test_push_applies_the_publish_rules_per_row(http_daemon: DaemonProcess) -> None:
    body = velocity_push([1, 2], [7, 9])
    body["df"]["avg_amount_24h"] = [2.5, "NaN"]  # the group does not allow NaN: that row is refused, the other kept
    status, result = post(http_daemon, "/push", body)
    assert status == 200 and (result["rows_accepted"], result["rows_rejected"]) == (1, 1)
    assert result["rejections"][0]["rows"] == [1, 2] and result["rejections"][0]["field"] == "avg_amount_24h"


@pytest.mark.parametrize("path,body,code,field", [
    ("/get-online-features", {"features": ["transaction_velocity:txn_count_1h"]}, 400, "entities"),
    ("/get-online-features", {"features": "x", "entities": {"customer_id": [1]}}, 400, "features"),
    ("/get-online-features", {"features": ["transaction_velocity:txn_count_1h"], "entities": {"customer_id": [1]}, "extra": 1}, 400, "extra"),
    ("/get-online-features", {"features": ["nope:x"], "entities": {"customer_id": [1]}}, 404, None),
    ("/get-online-features", {"features": ["transaction_velocity:txn_count_1h"], "entities": {"customer_id": ["a"]}}, 400, None),
    ("/push", {"push_source_name": "transaction_velocity", "df": {"customer_id": [1], "event_timestamp": ["2026-01-01T00:00:00"]}}, 400, "event_timestamp"),
    ("/push", {"push_source_name": "transaction_velocity", "df": {"customer_id": [1]}, "to": "offline"}, 400, "to"),
    ("/push", {"df": {"customer_id": [1]}}, 400, "push_source_name"),
    ("/push", [1, 2], 400, "body"),
])
def test_bad_requests_get_a_clear_json_error(daemon_factory, path: str, body: object, code: int, field: str | None) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(extra_args=["--http-port", "0"]).start()
    with Client(daemon.target) as client:
        client.apply(load_repo(FRAUD_REPO))
    status, answer = post(daemon, path, body)
    assert status == code, answer
    assert set(answer) == {"error"} and answer["error"]["message"] and "Traceback" not in answer["error"]["message"]
    if field is not None:
        assert answer["error"]["field"] == field


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=200), st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                                                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                                                      max_leaves=12).map(lambda v: json.dumps(v).encode())))
def test_any_body_gets_a_json_answer_never_a_server_error(http_fuzz_daemon: DaemonProcess, raw: bytes) -> None:
    for path in ("/get-online-features", "/push"):
        status, answer = post(http_fuzz_daemon, path, None, raw=raw)
        assert status < 500, (status, answer)


@pytest.fixture(scope="module")
def http_fuzz_daemon(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    daemon = DaemonProcess(tmp_path_factory.mktemp("http-fuzz") / "data", extra_args=["--http-port", "0"]).start()
    with Client(daemon.target) as client:
        client.apply(load_repo(FRAUD_REPO))
    yield daemon
    daemon.stop()


def test_the_same_tokens_and_scopes_as_grpc(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [{"name": "inference", "token": TOKENS["reader"], "scopes": ["read"]},
                                             {"name": "loader", "token": TOKENS["loader"], "scopes": ["write"]},
                                             {"name": "ops", "token": TOKENS["ops"], "scopes": ["admin"]}]}))
    daemon = daemon_factory(env={"FSD_SERVER_TOKENS_FILE": str(tokens)}, extra_args=["--http-port", "0"]).start()
    with Client(daemon.target, token=TOKENS["ops"]) as ops:
        ops.apply(load_repo(FRAUD_REPO))
    request = {"features": ["transaction_velocity:txn_count_1h"], "entities": {"customer_id": [1]}}
    assert post(daemon, "/get-online-features", request)[0] == 401
    assert post(daemon, "/get-online-features", request, token="not-a-token-at-all-xxxxxxxx")[0] == 401
    assert post(daemon, "/get-online-features", request, token=TOKENS["reader"])[0] == 200
    assert post(daemon, "/push", velocity_push([1], [3]), token=TOKENS["reader"])[0] == 403
    status, pushed = post(daemon, "/push", velocity_push([1], [3]), token=TOKENS["loader"])
    assert status == 200 and pushed["rows_accepted"] == 1
    assert all(token not in daemon.log() for token in TOKENS.values())


def test_the_same_limits_as_grpc(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(env={"FSD_LIMITS_MAX_ENTITIES": "10", "FSD_SERVER_MAX_MESSAGE_BYTES": "65536"}, extra_args=["--http-port", "0"]).start()
    with Client(daemon.target) as client:
        client.apply(load_repo(FRAUD_REPO))
    status, answer = post(daemon, "/get-online-features", {"features": ["transaction_velocity:txn_count_1h"], "entities": {"customer_id": list(range(11))}})
    assert status == 413 and "10" in answer["error"]["message"] and answer["error"]["code"] == "RESOURCE_EXHAUSTED"
    status, answer = post(daemon, "/push", None, raw=b'{"df": "' + b"x" * 70_000 + b'"}')
    assert status == 413 and answer["error"]["field"] == "body"
