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
