"""The Python API a data scientist expects: entity rows in every common shape, results as Arrow, pandas or dicts
with the key columns first, manifests instead of feature lists, and the training-set path."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fsd
from fsd.client import Client
from fsd.registry.definitions import load_text
from fsd.client.training import ingest_offline
from fsd.offline.store import OfflineStore
from tests.helpers import MICROS, now_micros

pd = pytest.importorskip("pandas")
TS = pa.timestamp("us", tz="UTC")
REPO = """
feature_groups:
  - name: velocity
    entity_keys: [{name: customer_id, type: int64}]
    max_age: 1h
    features:
      - {name: count_1h, dtype: int64}
      - {name: amount, dtype: double}
"""


@pytest.fixture
def api(daemon, monkeypatch) -> Client:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FSD_TARGET", daemon.target)
    client = fsd.Client()  # FSD_TARGET, not the default address
    client.apply(load_text(REPO))
    t = now_micros() - 60 * MICROS
    client.publish("velocity", pa.table({"customer_id": pa.array([1, 2, 3], pa.int64()), "event_timestamp": pa.array([t] * 3, TS),
                                         "count_1h": pa.array([10, 20, 30], pa.int64()), "amount": [1.5, 2.5, 3.5]}))
    yield client
    client.close()


@pytest.mark.parametrize("shape", ["dict", "numpy", "rows", "pandas", "arrow"])
def test_entities_in_every_common_shape(api: Client, shape: str) -> None:
    ids = [3, 1, 99]
    entities = {
        "dict": {"customer_id": ids},
        "numpy": {"customer_id": np.array(ids, dtype=np.int64)},
        "rows": [{"customer_id": i} for i in ids],
        "pandas": pd.DataFrame({"customer_id": ids}),
        "arrow": pa.table({"customer_id": pa.array(ids, pa.int64())}),
    }[shape]
    result = api.get_features(["velocity:count_1h", "velocity:amount"], entities)
    assert result.to_dict(include=[]) == {"customer_id": ids, "velocity:count_1h": [30, 10, None], "velocity:amount": [3.5, 1.5, None]}


def test_results_as_arrow_pandas_and_dicts_with_the_keys_first(api: Client) -> None:
    result = api.get_features(["velocity:count_1h"], {"customer_id": [1, 99]})
    table = result.to_arrow(include=["status", "version", "event_time"])
    assert table.column_names == ["customer_id", "velocity:count_1h", "velocity:count_1h:status", "velocity:count_1h:version",
                                  "velocity:count_1h:event_time"]
    assert table["velocity:count_1h:status"].to_pylist() == ["PRESENT", "NOT_FOUND"]
    assert table["velocity:count_1h:version"].to_pylist() == [1, 1]
    assert table["velocity:count_1h:event_time"].null_count == 1
    frame = result.to_pandas()
    assert list(frame.columns) == ["customer_id", "velocity:count_1h", "velocity:count_1h:status"]
    assert frame["customer_id"].tolist() == [1, 99]
    with pytest.raises(ValueError, match="include"):
        result.to_arrow(include=["nope"])


def test_a_manifest_instead_of_features_and_the_training_path(api: Client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = OfflineStore(api.get_deployment().offline_root)
    t = now_micros() - 120 * MICROS
    ingest_offline(api, store, "velocity", pa.table({"customer_id": pa.array([1, 2], pa.int64()), "event_timestamp": pa.array([t, t], TS),
                                                     "count_1h": pa.array([5, 6], pa.int64()), "amount": [0.5, 0.6]}))
    entity_df = pd.DataFrame({"customer_id": [1, 2, 3], "event_timestamp": pd.to_datetime([now_micros() * 1000] * 3, utc=True)})
    train = api.get_historical_features(entity_df, ["velocity:count_1h"])
    assert train["velocity:count_1h"].to_pylist() == [5, 6, None]
    assert train["velocity:count_1h:status"].to_pylist() == ["PRESENT", "PRESENT", "NOT_FOUND"]
    with pytest.raises(fsd.FsdError, match="UTC offset"):
        api.get_historical_features(entity_df, ["velocity:count_1h"], as_of="2026-01-01T00:00:00")
    before = api.get_historical_features(entity_df, ["velocity:count_1h"], as_of="2000-01-01T00:00:00Z")
    assert before["velocity:count_1h"].to_pylist() == [None, None, None]  # nothing was created by then
    doc = api.create_dataset(entity_df, str(tmp_path / "train.parquet"), ["velocity:count_1h"], name="model")
    assert doc["serving_manifest"] == "model@1"
    served = api.get_features(manifest="model", entities=[{"customer_id": 1}])
    assert served.manifest == "model@1" and served.to_dict(include=[])["velocity:count_1h"] == [10]
    assert served["velocity:count_1h@1"].version == 1  # the pinned ref still finds its column
    assert api.get_historical_features(entity_df, manifest="model").column_names[-2:] == ["velocity:count_1h", "velocity:count_1h:status"]


def test_bad_entity_shapes_are_clear_errors(api: Client) -> None:
    with pytest.raises(fsd.FsdError, match="one dict per entity row"):
        api.get_features(["velocity:count_1h"], [1, 2])
    with pytest.raises(fsd.FsdError, match="row 1 has no 'customer_id'"):
        api.get_features(["velocity:count_1h"], [{"customer_id": 1}, {}])


def test_a_model_selects_the_same_columns_in_training_and_in_serving(api: Client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One name per feature (#24): the columns a model was trained on are the columns it is served, whether the
    request names features unpinned, pinned or through the training set's manifest; the version is an include."""
    store = OfflineStore(api.get_deployment().offline_root)
    t = now_micros() - 120 * MICROS
    ingest_offline(api, store, "velocity", pa.table({"customer_id": pa.array([1, 2], pa.int64()), "event_timestamp": pa.array([t, t], TS),
                                                     "count_1h": pa.array([5, 6], pa.int64()), "amount": [0.5, 0.6]}))
    entity_df = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": pd.to_datetime([now_micros() * 1000] * 2, utc=True)})
    doc = api.create_dataset(entity_df, str(tmp_path / "train.parquet"), ["velocity:count_1h", "velocity:amount@1"], name="fraud_model")
    training = pq.read_table(tmp_path / "train.parquet")
    model_columns = [c for c in training.column_names if c not in ("customer_id", "event_timestamp") and not c.endswith(":status")]
    assert model_columns == ["velocity:count_1h", "velocity:amount"]
    rows = {"customer_id": [1, 2]}
    for served in (api.get_features(manifest=str(doc["serving_manifest"]), entities=rows),
                   api.get_features(manifest="fraud_model", entities=rows),
                   api.get_features(["velocity:count_1h@1", "velocity:amount@1"], rows),
                   api.get_features(["velocity:count_1h", "velocity:amount"], rows)):
        assert list(served.features) == model_columns
        assert served.to_arrow(include=[]).select(model_columns).num_columns == 2
        frame = served.to_pandas(include=["version"])
        assert frame[model_columns].shape == (2, 2)
        assert frame["velocity:count_1h:version"].tolist() == [1, 1]
