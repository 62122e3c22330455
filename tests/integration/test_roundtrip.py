"""apply -> publish -> GetFeatures through a real daemon process, for every dtype, nulls, vectors and composite keys."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fsd.client import Client
from fsd.domain import ValueStatus
from tests.helpers import MICROS, all_types_table, now_micros, seconds_ago, ts_column


@pytest.fixture
def daemon_workers(both_serving_modes: int) -> int:
    """This suite runs against one daemon process and against `fsd serve --workers 2`."""
    return both_serving_modes

ALL = ["f_int", "f_double", "f_float", "f_bool", "f_string", "f_bytes", "f_vec", "f_required"]


def refs(*names: str) -> list[str]:
    return [f"all_types:{n}" for n in names]


def test_every_dtype_round_trips_with_nulls(typed_client: Client) -> None:
    t = seconds_ago(5)
    table = all_types_table(
        [1, 2, 3],
        [t, t, t],
        f_int=pa.array([10, None, 30], type=pa.int64()),
        f_string=pa.array(["a", None, "ünï"]),
        f_vec=pa.array([[1.0, 2.0, 3.0], None, [0.0, -0.5, 9.25]], type=pa.list_(pa.float32())),
        f_bytes=pa.array([b"\x00\x01", None, b""], type=pa.binary()),
    )
    response = typed_client.publish("all_types", table)
    assert (response.rows_accepted, response.rows_rejected) == (3, 0)
    assert response.values_written == 3 * len(ALL)

    result = typed_client.get_features(refs(*ALL), {"entity_id": [1, 2, 3, 4]})
    assert result.entity_count == 4
    for ref in refs(*ALL):
        f = result[ref]
        assert f.version == 1
        assert list(f.statuses) == [ValueStatus.PRESENT] * 3 + [ValueStatus.NOT_FOUND]
        assert list(f.event_time_micros[:3]) == [t, t, t] and f.event_time_micros[3] == 0
    assert result["all_types:f_int"].values.tolist()[::2] == [10, 30]
    assert result["all_types:f_int"].is_null.tolist() == [False, True, False, False]
    assert result["all_types:f_double"].values.tolist()[:3] == [1.5, 3.0, 4.5]
    assert result["all_types:f_float"].values.dtype == np.float32
    assert result["all_types:f_float"].values.tolist()[:3] == [0.25, 0.5, 0.75]
    assert result["all_types:f_bool"].values.tolist()[:3] == [False, True, False]
    assert result["all_types:f_string"].values[:3] == ["a", "", "ünï"]
    assert result["all_types:f_string"].is_null.tolist()[:3] == [False, True, False]
    assert result["all_types:f_bytes"].values[:3] == [b"\x00\x01", b"", b""]
    assert result["all_types:f_bytes"].is_null.tolist()[:3] == [False, True, False]
    vec = result["all_types:f_vec"]
    assert vec.values.shape == (4, 3)
    assert vec.values[0].tolist() == [1.0, 2.0, 3.0] and vec.values[2].tolist() == [0.0, -0.5, 9.25]
    assert vec.is_null.tolist() == [False, True, False, False]
    assert result["all_types:f_required"].values.tolist()[:3] == [0, 1, 2]

    arrow = result.to_arrow()
    assert arrow.column("all_types:f_int").to_pylist() == [10, None, 30, None]
    assert arrow.column("all_types:f_int:status").to_pylist() == ["PRESENT", "PRESENT", "PRESENT", "NOT_FOUND"]


def test_composite_string_and_int_keys(typed_client: Client) -> None:
    table = pa.table(
        {
            "user": ["alice", "alice", "bob"],
            "item_id": pa.array([1, 2, 1], type=pa.int64()),
            "event_timestamp": ts_column([seconds_ago(1)] * 3),
            "score": [0.1, 0.2, 0.3],
        }
    )
    assert typed_client.publish("pairs", table).rows_accepted == 3
    result = typed_client.get_features(["pairs:score"], {"user": ["bob", "alice", "alice", "carol"], "item_id": [1, 2, 1, 1]})
    score = result["pairs:score"]
    assert score.values.tolist()[:3] == [0.3, 0.2, 0.1]
    assert list(score.statuses) == [ValueStatus.PRESENT] * 3 + [ValueStatus.NOT_FOUND]


def test_values_older_than_max_age_are_stale(typed_client: Client) -> None:
    fresh, old = seconds_ago(60), seconds_ago(2 * 3600)  # all_types max_age is 1h
    typed_client.publish("all_types", all_types_table([1, 2], [fresh, old]))
    result = typed_client.get_features(refs("f_int"), {"entity_id": [1, 2]})
    assert list(result["all_types:f_int"].statuses) == [ValueStatus.PRESENT, ValueStatus.STALE]
    assert result["all_types:f_int"].values.tolist() == [10, 20]  # a stale value is still returned, marked


def test_older_event_time_never_overwrites_newer(typed_client: Client) -> None:
    newer, older = seconds_ago(10), seconds_ago(100)
    typed_client.publish("all_types", all_types_table([7], [newer], f_int=pa.array([700])))
    response = typed_client.publish("all_types", all_types_table([7], [older], f_int=pa.array([1])))
    assert response.values_skipped_older == len(ALL)
    assert response.values_written == 0
    result = typed_client.get_features(refs("f_int"), {"entity_id": [7]})
    assert result["all_types:f_int"].values.tolist() == [700]
    assert result["all_types:f_int"].event_time_micros.tolist() == [newer]


def test_newest_row_per_entity_wins_within_one_publish(typed_client: Client) -> None:
    t = now_micros()
    table = all_types_table([5, 5, 5], [t - 3 * MICROS, t - 1 * MICROS, t - 2 * MICROS], f_int=pa.array([1, 2, 3]))
    response = typed_client.publish("all_types", table, chunk_rows=2)  # the rows span two chunks
    assert response.rows_accepted == 3
    assert typed_client.get_features(refs("f_int"), {"entity_id": [5]})["all_types:f_int"].values.tolist() == [2]


def test_pinned_version_is_served_and_reported(typed_client: Client) -> None:
    typed_client.publish("all_types", all_types_table([1], [seconds_ago(1)]))
    result = typed_client.get_features(["all_types:f_int@1", "all_types:f_int"], {"entity_id": [1]})
    assert result["all_types:f_int@1"].version == 1
    assert result["all_types:f_int@1"].values.tolist() == result["all_types:f_int"].values.tolist() == [10]


def test_retried_publish_with_same_id_has_no_further_effect(typed_client: Client) -> None:
    t = seconds_ago(30)
    first = typed_client.publish("all_types", all_types_table([1, 2, 3, 4], [t] * 4), publish_id="load-42", chunk_rows=2)
    assert first.chunks_written == 2
    # Same publish id, newer values: the chunks are already durable, so nothing changes.
    retry = typed_client.publish("all_types", all_types_table([1, 2, 3, 4], [seconds_ago(1)] * 4, f_int=pa.array([0] * 4)),
                                 publish_id="load-42", chunk_rows=2)
    assert retry.chunks_skipped_duplicate == 2 and retry.chunks_written == 0 and retry.values_written == 0
    assert typed_client.get_features(refs("f_int"), {"entity_id": [1, 4]})["all_types:f_int"].values.tolist() == [10, 40]
