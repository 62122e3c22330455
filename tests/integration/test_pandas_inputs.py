"""pandas DataFrames go in wherever tables go in (publish, offline ingest); anything else is a clear fsd error."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from fsd.client import Client
from fsd.client.training import ingest_offline
from fsd.errors import InvalidArgument
from fsd.offline.store import OfflineStore


def frame(ids: list[int], counts: list[object]) -> pd.DataFrame:
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    return pd.DataFrame({"customer_id": pd.array(ids, dtype="Int64"), "event_timestamp": [now] * len(ids),
                         "txn_count_1h": pd.array(counts, dtype="Int64"), "txn_amount_sum_1h": [1.5] * len(ids)})


def test_publish_takes_a_pandas_dataframe(fraud_client: Client) -> None:
    result = fraud_client.publish("transaction_velocity", frame([1, 2, 3], [5, 6, 7]).set_index("customer_id", drop=False))
    assert result.rows_accepted == 3
    got = fraud_client.get_features(["transaction_velocity:txn_count_1h"], {"customer_id": [1, 2, 3]})
    assert got["transaction_velocity:txn_count_1h"].values.tolist() == [5, 6, 7]


def test_offline_ingest_takes_a_pandas_dataframe(fraud_client: Client, tmp_path: Path) -> None:
    report = ingest_offline(fraud_client, OfflineStore(tmp_path / "offline"), "transaction_velocity", frame([1, 2], [3, 4]))
    assert report.rows_written == 2


@pytest.mark.parametrize("bad", [[{"customer_id": 1}], "not a table", 42])
def test_anything_else_is_a_clear_error(fraud_client: Client, bad: object) -> None:
    with pytest.raises(InvalidArgument) as refused:
        fraud_client.publish("transaction_velocity", bad)
    assert refused.value.field == "table" and "Arrow table or a pandas DataFrame" in refused.value.message


def test_entity_rows_take_arrow_batches_and_refuse_anything_else_clearly(fraud_client: Client) -> None:
    import pyarrow as pa

    fraud_client.publish("transaction_velocity", frame([1, 2], [5, 6]))
    at = dt.datetime.now(dt.timezone.utc)
    batch = pa.RecordBatch.from_pydict({"customer_id": pa.array([1, 2, 9], pa.int64()), "event_timestamp": pa.array([at] * 3, pa.timestamp("us", "UTC"))})
    assert fraud_client.get_historical_features(batch, ["transaction_velocity:txn_count_1h"]).num_rows == 3
    assert fraud_client.get_features(["transaction_velocity:txn_count_1h"], batch.select(["customer_id"]))["transaction_velocity:txn_count_1h"].values.tolist()[:2] == [5, 6]
    for bad in (42, "customer_id", [1, 2], {"customer_id": [1, 2], "event_timestamp": [1]}):
        with pytest.raises(InvalidArgument) as refused:
            fraud_client.get_historical_features(bad, ["transaction_velocity:txn_count_1h"])
        assert refused.value.field in ("entity_df", "event_timestamp")


def test_int64_features_stay_int64_in_pandas_when_some_rows_are_missing(fraud_client: Client) -> None:
    fraud_client.publish("transaction_velocity", frame([1, 2], [2**53 + 1, 6]))
    served = fraud_client.get_features(["transaction_velocity:txn_count_1h"], {"customer_id": [1, 2, 404]}).to_pandas()
    column = served["transaction_velocity:txn_count_1h"]
    assert str(column.dtype) == "Int64"
    assert column.iloc[0] == 2**53 + 1 and column.iloc[1] == 6 and column.isna().tolist() == [False, False, True]
    assert served["transaction_velocity:txn_count_1h:status"].tolist() == ["PRESENT", "PRESENT", "NOT_FOUND"]


def test_training_status_columns_have_only_real_categories(fraud_client: Client, tmp_path: Path) -> None:
    at = dt.datetime.now(dt.timezone.utc)
    entity_df = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": [at, at]})
    train = fraud_client.get_historical_features(entity_df, ["transaction_velocity:txn_count_1h"]).to_pandas()
    status = train["transaction_velocity:txn_count_1h:status"]
    assert list(status.cat.categories) == ["PRESENT", "NOT_FOUND", "STALE"]
    assert status.tolist() == ["NOT_FOUND", "NOT_FOUND"]
