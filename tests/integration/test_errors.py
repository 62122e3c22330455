"""Bad input gets the right status code and a message naming the field, row or rule, and writes nothing."""
from __future__ import annotations

import grpc
import numpy as np
import pyarrow as pa
import pytest

from fsd.client import Client, table_to_ipc
from fsd.domain import ValueStatus
from fsd.v1 import serving_pb2, serving_pb2_grpc
from tests.helpers import raises_status, rpc_error as status_of, all_types_table, now_micros, seconds_ago


def rpc_error(call):  # type: ignore[no-untyped-def]
    return status_of(call)


def assert_untouched(client: Client, entity_ids: list[int]) -> None:
    result = client.get_features(["all_types:f_int", "all_types:f_required"], {"entity_id": entity_ids})
    for column in result.features.values():
        assert set(column.statuses.tolist()) == {ValueStatus.NOT_FOUND}


def test_unknown_group_and_feature_are_not_found(typed_client: Client) -> None:
    err = rpc_error(lambda: typed_client.get_features(["nope:f"], {"entity_id": [1]}))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "'nope'" in err.details()
    err = rpc_error(lambda: typed_client.get_features(["all_types:missing"], {"entity_id": [1]}))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "'missing'" in err.details()
    err = rpc_error(lambda: typed_client.get_features(["all_types:f_int@9"], {"entity_id": [1]}))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "no version 9" in err.details()
    err = rpc_error(lambda: typed_client.publish("nope", all_types_table([1], [seconds_ago(1)])))
    assert err.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "refs, entities, code, fragment",
    [
        (["all_types:f_int"], {"entity_id": ["1"]}, grpc.StatusCode.INVALID_ARGUMENT, "'entity_id' is string"),
        (["all_types:f_int"], {"customer": [1]}, grpc.StatusCode.INVALID_ARGUMENT, "needs entity key column 'entity_id'"),
        (["all_types:f_int"], {"entity_id": []}, grpc.StatusCode.INVALID_ARGUMENT, "no entity rows"),
        ([], {"entity_id": [1]}, grpc.StatusCode.INVALID_ARGUMENT, "at least one feature"),
        (["all_types"], {"entity_id": [1]}, grpc.StatusCode.INVALID_ARGUMENT, "group:feature"),
        (["all_types:f_int@0"], {"entity_id": [1]}, grpc.StatusCode.INVALID_ARGUMENT, "positive integer"),
        (["all_types:f_int"], {"entity_id": list(range(10_001))}, grpc.StatusCode.RESOURCE_EXHAUSTED, "limit of 10000"),
    ],
)
def test_bad_reads(typed_client: Client, refs, entities, code, fragment) -> None:  # type: ignore[no-untyped-def]
    err = rpc_error(lambda: typed_client.get_features(refs, entities))
    assert err.code() == code
    assert fragment in err.details()


def test_mismatched_entity_column_lengths(typed_client: Client) -> None:
    err = rpc_error(lambda: typed_client.get_features(["pairs:score"], {"user": ["a", "b"], "item_id": [1]}))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "differ in length" in err.details()


@pytest.mark.parametrize(
    "override, fragment",
    [
        ({"f_int": pa.array(["x"])}, "column 'f_int' is string"),
        ({"f_bool": pa.array([1.0])}, "f_bool"),
        ({"unknown_col": pa.array([1])}, "'unknown_col' is not a feature"),
        ({"event_timestamp": pa.array([1], type=pa.int64())}, "expected a timezone-aware timestamp"),
        ({"event_timestamp": pa.array([now_micros()], type=pa.timestamp("us"))}, "naive timestamps are refused"),
    ],
)
def test_whole_chunk_schema_errors_write_nothing(typed_client: Client, override, fragment) -> None:  # type: ignore[no-untyped-def]
    table = all_types_table([1], [seconds_ago(1)], **override)
    err = rpc_error(lambda: typed_client.publish("all_types", table))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in err.details()
    assert_untouched(typed_client, [1])


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda t: t.drop_columns(["entity_id"]), "entity key column 'entity_id' is missing"),
        (lambda t: t.set_column(0, "entity_id", pa.array(["1"])), "entity key 'entity_id' is string"),
    ],
)
def test_entity_key_mismatch_blocks_the_publish_and_opens_an_incident(typed_client: Client, change, fragment) -> None:  # type: ignore[no-untyped-def]
    err = rpc_error(lambda: typed_client.publish("all_types", change(all_types_table([1], [seconds_ago(1)]))))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ENTITY_KEY_MISMATCH" in err.details() and fragment in err.details() and "incident #1" in err.details()
    assert_untouched(typed_client, [1])


def test_garbage_arrow_payload(typed_client: Client, daemon) -> None:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(daemon.target) as channel:
        stub = serving_pb2_grpc.FeatureStoreStub(channel)
        chunks = iter([serving_pb2.PublishChunk(publish_id="p", group="all_types", arrow_ipc=b"not arrow at all")])
        err = rpc_error(lambda: stub.Publish(chunks, timeout=10))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "arrow_ipc" in err.details()


def test_row_rules_reject_rows_and_keep_the_rest(typed_client: Client) -> None:
    now = now_micros()
    ok = seconds_ago(1)
    table = all_types_table(
        [1, 2, 3, 4, 5, 6, 7],
        [ok, ok, ok, ok, now + 3600 * 1_000_000, ok, ok],
        f_int=pa.array([1.0, np.nan, 2.5, 4.0, 5.0, 6.0, 7.0]),  # float column for an int feature
        f_required=pa.array([0, 1, 2, None, 4, 5, 6], type=pa.int64()),
        f_double=pa.array([1.0, 2.0, 3.0, 4.0, 5.0, float("inf"), 7.0]),
        entity_id=pa.array([1, 2, 3, 4, 5, 6, None], type=pa.int64()),
    )
    response = typed_client.publish("all_types", table)
    assert (response.rows_accepted, response.rows_rejected) == (1, 6)
    rules = {(r.row_start, r.rule, r.field) for r in response.rejections}
    assert rules == {
        (1, "nan_in_int_column", "f_int"),
        (2, "not_integral", "f_int"),
        (3, "null_in_non_nullable", "f_required"),
        (4, "timestamp_in_future", "event_timestamp"),
        (5, "nan_or_inf_not_allowed", "f_double"),
        (6, "entity_key_null", "entity_id"),
    }
    assert all(r.row_end == r.row_start + 1 and r.field in r.reason for r in response.rejections)
    result = typed_client.get_features(["all_types:f_int"], {"entity_id": [1, 2, 3, 4, 5, 6]})
    assert list(result["all_types:f_int"].statuses) == [ValueStatus.PRESENT] + [ValueStatus.NOT_FOUND] * 5
    assert result["all_types:f_int"].values.tolist()[0] == 1


def test_vector_dimension_and_pre_epoch_rows_are_rejected(typed_client: Client) -> None:
    table = all_types_table(
        [1, 2],
        [-5_000_000, seconds_ago(1)],
        f_vec=pa.array([[1.0, 2.0, 3.0], [1.0, 2.0]], type=pa.list_(pa.float32())),
    )
    response = typed_client.publish("all_types", table)
    assert sorted((r.row_start, r.rule) for r in response.rejections) == [(0, "timestamp_before_epoch"), (1, "vector_dim_mismatch")]
    assert_untouched(typed_client, [1, 2])


def test_rejection_ranges_are_counted_from_publish_start(typed_client: Client) -> None:
    ids = list(range(1, 9))
    required = pa.array([0, 1, 2, 3, None, None, 6, 7], type=pa.int64())
    response = typed_client.publish("all_types", all_types_table(ids, [seconds_ago(1)] * 8, f_required=required), chunk_rows=5)
    assert [(r.row_start, r.row_end) for r in response.rejections] == [(4, 5), (5, 6)]  # rows 4 and 5 span chunks 1 and 2


def test_chunk_sequence_gap_is_refused(typed_client: Client, daemon) -> None:  # type: ignore[no-untyped-def]
    payload = table_to_ipc(all_types_table([1], [seconds_ago(1)]))
    with grpc.insecure_channel(daemon.target) as channel:
        stub = serving_pb2_grpc.FeatureStoreStub(channel)
        chunks = iter([serving_pb2.PublishChunk(publish_id="gap", group="all_types", sequence=3, arrow_ipc=payload)])
        err = rpc_error(lambda: stub.Publish(chunks, timeout=10))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "expected 0" in err.details()
    assert_untouched(typed_client, [1])


def test_oversized_message_is_refused(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(env={"FSD_SERVER_MAX_MESSAGE_BYTES": "4096"}).start()
    with Client(daemon.target) as client:
        err = rpc_error(lambda: client.get_features(["x:y"] * 1000, {"entity_id": list(range(1000))}))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_client_errors_are_the_fsd_tree_with_code_message_and_field(typed_client: Client) -> None:
    from fsd import errors

    with pytest.raises(errors.NotFound) as missing:
        typed_client.get_features(["all_types:nope"], {"entity_id": [1]})
    assert missing.value.code == "NOT_FOUND" and "'nope'" in missing.value.message and missing.value.field == "features"
    with pytest.raises(errors.InvalidArgument) as bad:
        typed_client.get_features(["all_types:f_int"], {"entity_id": ["x"]})
    assert bad.value.field == "entities.entity_id"
    with pytest.raises(errors.Unavailable) as nobody:
        Client("127.0.0.1:1", timeout=2).list_groups()
    assert "no fsd daemon at 127.0.0.1:1" in nobody.value.message
