"""Offline ingest -> training dataset with manifest -> the same versions served online, through a real daemon."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fsd.client import Client
from fsd.errors import InvalidArgument
from fsd.examples import FRAUD_REPO, fraud_data
from fsd.offline.store import OfflineStore
from fsd.client.training import create_dataset, ingest_offline
from tests.helpers import MICROS, now_micros

TS = pa.timestamp("us", tz="UTC")


@pytest.fixture
def offline(fraud_client: Client, tmp_path: Path) -> OfflineStore:
    return OfflineStore(tmp_path / "offline")


def test_ingest_dataset_and_serve_the_same_versions(fraud_client: Client, offline: OfflineStore, tmp_path: Path) -> None:
    now = now_micros()
    velocity = fraud_data.transaction_velocity(200, now, stale_share=0.0)
    report = ingest_offline(fraud_client, offline, "transaction_velocity", velocity, kind="backfill", actor="etl")
    assert report.rows_written == 200 and set(report.writes) == {"txn_count_1h", "txn_amount_sum_1h", "avg_amount_24h", "last_merchant_category"}
    history = fraud_client.history("transaction_velocity", "txn_count_1h").entries
    assert any(e.action == "offline_backfill" and "200 rows" in e.detail and e.actor == "etl" for e in history)

    entity_rows = pa.table({
        "customer_id": pa.array([1, 2, 3, 999], pa.int64()),
        "event_timestamp": pa.array([now + MICROS] * 3 + [now], TS),
    })
    out = tmp_path / "ds.parquet"
    create_dataset(fraud_client, offline, entity_rows, ["transaction_velocity:txn_count_1h", "transaction_velocity:avg_amount_24h@1"],
                         out, name="fraud_model")
    data = pq.read_table(out)
    assert data.num_rows == 4 and data["customer_id"].to_pylist() == [1, 2, 3, 999]
    assert data["transaction_velocity:txn_count_1h"].to_pylist()[:3] == velocity["txn_count_1h"].to_pylist()[:3]
    assert data["transaction_velocity:txn_count_1h:status"].to_pylist()[3] == "NOT_FOUND"
    manifest = json.loads((tmp_path / "ds.parquet.manifest.json").read_text())
    assert manifest["serving_manifest"] == "fraud_model@1" and manifest["rows"] == 4
    assert [f["ref"] for f in manifest["features"]] == ["transaction_velocity:txn_count_1h@1", "transaction_velocity:avg_amount_24h@1"]
    assert all(f["offline_snapshots"] and len(f["definition_hash"]) == 64 for f in manifest["features"])

    fraud_client.publish("transaction_velocity", velocity)
    served = fraud_client.get_features([], {"customer_id": [1, 2, 3]}, manifest="fraud_model")
    assert served.manifest == "fraud_model@1"
    assert served["transaction_velocity:txn_count_1h@1"].values.tolist() == velocity["txn_count_1h"].to_pylist()[:3]


def test_bad_rows_write_nothing_unless_skipped(fraud_client: Client, offline: OfflineStore) -> None:
    now = now_micros()
    table = fraud_data.transaction_velocity(10, now, stale_share=0.0)
    bad = table.set_column(2, "txn_count_1h", pa.array([1, None, 3, 4, 5, 6, 7, 8, 9, 10], pa.int64()))  # non-nullable
    with pytest.raises(InvalidArgument, match=r"rows 1-1: \[null_in_non_nullable\]"):
        ingest_offline(fraud_client, offline, "transaction_velocity", bad)
    assert not list(offline.root.rglob("*.parquet"))
    report = ingest_offline(fraud_client, offline, "transaction_velocity", bad, skip_bad_rows=True)
    assert (report.rows_written, report.rows_rejected) == (9, 1)


def test_late_correction_wins_and_as_of_reproduces_the_past(fraud_client: Client, offline: OfflineStore, tmp_path: Path) -> None:
    t0 = now_micros() - 3600 * MICROS

    def rows(value: int, created: int) -> pa.Table:
        return pa.table({"customer_id": pa.array([1], pa.int64()), "event_timestamp": pa.array([t0], TS),
                         "created_timestamp": pa.array([created], TS), "txn_count_1h": pa.array([value], pa.int64()),
                         "txn_amount_sum_1h": [1.0]})

    ingest_offline(fraud_client, offline, "transaction_velocity", rows(5, t0 + 10 * MICROS))
    ingest_offline(fraud_client, offline, "transaction_velocity", rows(6, t0 + 600 * MICROS), kind="correction")
    entity_rows = pa.table({"customer_id": pa.array([1], pa.int64()), "event_timestamp": pa.array([t0 + 60 * MICROS], TS)})
    from fsd.client.training import historical_features

    latest, _ = historical_features(fraud_client, offline, entity_rows, ["transaction_velocity:txn_count_1h"])
    assert latest["transaction_velocity:txn_count_1h"].to_pylist() == [6]
    then, _ = historical_features(fraud_client, offline, entity_rows, ["transaction_velocity:txn_count_1h"], as_of_micros=t0 + 60 * MICROS)
    assert then["transaction_velocity:txn_count_1h"].to_pylist() == [5]


def test_cli_offline_ingest_and_dataset(daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def fsd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fsd.cli", *args, "--target", daemon.target], capture_output=True, text=True, timeout=120)

    assert fsd("apply", str(FRAUD_REPO)).returncode == 0
    now = now_micros()
    pq.write_table(fraud_data.customer_profile(50, now), tmp_path / "profile.parquet")
    ingested = fsd("offline", "ingest", "customer_profile", str(tmp_path / "profile.parquet"))
    assert ingested.returncode == 0, ingested.stderr
    assert "50 of 50 rows written" in ingested.stdout
    pq.write_table(pa.table({"customer_id": pa.array(np.arange(1, 11), pa.int64()), "event_timestamp": pa.array([now] * 10, TS)}),
                   tmp_path / "entities.parquet")
    made = fsd("dataset", "create", "--entities", str(tmp_path / "entities.parquet"), "--features", "customer_profile:country",
               "customer_profile:behaviour_embedding", "--out", str(tmp_path / "ds.parquet"), "--name", "profile_model")
    assert made.returncode == 0, made.stderr
    assert "serving manifest profile_model@1" in made.stdout
    data = pq.read_table(tmp_path / "ds.parquet")
    assert data.num_rows == 10 and data["customer_profile:country"].null_count == 0


def test_csv_ingest_with_utc_offsets(fraud_client: Client, offline: OfflineStore, tmp_path: Path) -> None:
    from fsd.client.training import read_table

    csv = tmp_path / "velocity.csv"
    csv.write_text(
        "customer_id,event_timestamp,txn_count_1h,txn_amount_sum_1h\n"
        "1,2026-11-25T10:00:00Z,3,12.5\n"
        "2,2026-11-25T11:00:00+01:00,4,20.0\n"
    )
    report = ingest_offline(fraud_client, offline, "transaction_velocity", read_table(csv))
    assert report.rows_written == 2
    naive = tmp_path / "naive.csv"
    naive.write_text("customer_id,event_timestamp,txn_count_1h,txn_amount_sum_1h\n1,2026-11-25 10:00:00,3,12.5\n")
    with pytest.raises(InvalidArgument, match="naive timestamps are refused"):
        ingest_offline(fraud_client, offline, "transaction_velocity", read_table(naive))
