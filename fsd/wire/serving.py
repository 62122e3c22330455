"""fsd.v1.FeatureStore on the wire: GetFeatures requests and replies, publish chunks, results and status.

GetFeatures replies are not built as messages: the read path returns the rows it read, and this module encodes
them natively into serialised FeatureColumn bytes (their readable specification is the array writer of
fsd.codec._columns_py) and frames them; the bytes are what SerializeToString would produce (tests/unit/test_wire.py)."""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from google.protobuf.message import DecodeError

from fsd import codec
from fsd.domain import FeatureValues, GetRequest, OnlineFeatures, PublishChunk, PublishMode, PublishResult, PublishStatus, Rejection, ResolvedFeature
from fsd.errors import InvalidArgument
from fsd.v1 import serving_pb2, types_pb2

if TYPE_CHECKING:  # the read path's result, encoded here
    from fsd.serving.lookup import FetchedRows


# --- GetFeatures, server side ----------------------------------------------------------------------------------


def get_request(raw: bytes) -> GetRequest:
    """The request bytes as the read path takes them: split without protobuf objects when they have the common
    shape (codec.split_get_request), else parsed strictly (malformed bytes are INVALID_ARGUMENT)."""
    split = codec.split_get_request(raw)
    if split is not None:
        features_key, manifest, columns = split
        return GetRequest(features_key, manifest, columns)
    try:
        request = serving_pb2.GetFeaturesRequest.FromString(raw)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InvalidArgument(f"request is not a valid fsd.v1.GetFeaturesRequest message: {str(exc)[:200]}") from None
    columns: list[tuple[str, bytes | list[str]]] = []
    for column in request.entities:
        kind = column.WhichOneof("values")
        if kind == "int64_values":
            columns.append((column.name, np.asarray(column.int64_values.values, dtype="<i8").tobytes()))
        elif kind == "string_values":
            columns.append((column.name, list(column.string_values.values)))
        else:
            raise InvalidArgument(f"entities: column {column.name[:100]!r} carries no values (int64_values or string_values)",
                                  field=f"entities.{column.name[:100]}")
    features_key = serving_pb2.GetFeaturesRequest(features=request.features).SerializeToString()
    return GetRequest(features_key, request.manifest, columns)


def refs_from_wire(features_key: bytes) -> list[str] | None:
    """The refs of GetFeaturesRequest `features` fields in wire form; None if malformed."""
    try:
        return list(serving_pb2.GetFeaturesRequest.FromString(features_key).features)
    except (DecodeError, ValueError, RuntimeError):
        return None


class ResponseEncoder:
    """Caches the serialised head (ref, group, feature, version, dtype) of each column it has seen."""

    def __init__(self) -> None:
        self._heads: dict[tuple[str, int, int], bytes] = {}

    def head(self, ref: str, feature: ResolvedFeature) -> bytes:
        key = (ref, feature.slot, feature.version)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) > 100_000:
                self._heads.clear()
            head = serving_pb2.FeatureColumn(
                ref=ref, group=feature.group, feature=feature.feature, version=feature.version, dtype=int(feature.dtype)
            ).SerializeToString()
            self._heads[key] = head
        return head

    def encoded_response(self, entity_count: int, columns: list[bytes], served_at: int, manifest: str, epoch: int = 0) -> bytes:
        return codec.frame_response(entity_count, columns, served_at, manifest.encode("utf-8"), epoch)

    def encode_rows(self, fetched: FetchedRows) -> bytes:
        """The serialised GetFeaturesResponse for rows the read path fetched: per group, the fused native pass
        (decode, freshness status, wire column) over its rows, then the frame."""
        plan, now = fetched.plan, fetched.now
        specs = plan.column_specs(self.head)
        if len(plan.groups) == 1:
            columns = codec.encode_feature_columns(fetched.rows[plan.groups[0].name], specs[0], now)
        else:
            columns = [b""] * len(plan.resolved)
            for group, group_specs in zip(plan.groups, specs):
                for i, column in zip(group.members, codec.encode_feature_columns(fetched.rows[group.name], group_specs, now)):
                    columns[i] = column
        return self.encoded_response(fetched.count, columns, now, plan.manifest, fetched.epoch)


# --- GetFeatures, client side ----------------------------------------------------------------------------------


def get_features_request(features: Sequence[str], entities: Mapping[str, object], manifest: str) -> serving_pb2.GetFeaturesRequest:
    """{name: ints or strs} -> typed entity columns (the type is taken from the values)."""
    columns = []
    for name, values in entities.items():
        items = values.tolist() if isinstance(values, np.ndarray) else list(values)  # type: ignore[call-overload]
        column = serving_pb2.EntityColumn(name=name)
        if items and all(isinstance(v, str) for v in items):
            column.string_values.values.extend(items)
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            try:
                column.int64_values.values.extend(int(v) for v in items)
            except ValueError:
                raise InvalidArgument(f"entities: column {name!r} holds an integer outside int64", field=name) from None
        else:
            raise InvalidArgument(f"entities: column {name!r} must hold only ints or only strings", field=name)
        columns.append(column)
    return serving_pb2.GetFeaturesRequest(entities=columns, features=list(features), manifest=manifest)


def column_values(column: types_pb2.Column) -> object:
    """Typed column -> numpy array (2-D for vectors) or list."""
    kind = column.WhichOneof("values")
    if kind == "int64_values":
        return np.asarray(column.int64_values.values, dtype=np.int64)
    if kind == "double_values":
        return np.asarray(column.double_values.values, dtype=np.float64)
    if kind == "float_values":
        return np.asarray(column.float_values.values, dtype=np.float32)
    if kind == "bool_values":
        return np.asarray(column.bool_values.values, dtype=np.bool_)
    if kind == "string_values":
        return list(column.string_values.values)
    if kind == "bytes_values":
        return list(column.bytes_values.values)
    if kind == "vector_values":
        dim = column.vector_values.dim
        flat = np.asarray(column.vector_values.values, dtype=np.float32)
        return flat.reshape(-1, dim) if dim else flat.reshape(0, 0)
    return np.zeros(0)


def online_features(response: serving_pb2.GetFeaturesResponse, entities: Mapping[str, list[object]] | None = None) -> OnlineFeatures:
    features = {
        column.ref: FeatureValues(
            ref=column.ref, group=column.group, feature=column.feature, version=column.version, values=column_values(column.values),
            is_null=np.asarray(column.is_null, dtype=np.bool_), statuses=np.asarray(column.statuses, dtype=np.uint8),
            event_time_micros=np.asarray(column.event_time_micros, dtype=np.int64),
        )
        for column in response.features
    }
    return OnlineFeatures(response.entity_count, response.served_at_micros, features, response.manifest, response.registry_epoch,
                          dict(entities or {}))


# --- Publish ---------------------------------------------------------------------------------------------------


def publish_chunks(requests: Iterator[serving_pb2.PublishChunk]) -> Iterator[PublishChunk]:
    """The stream's chunks as domain values, parsed lazily (the publisher stops reading when the caller is gone)."""
    for chunk in requests:
        yield PublishChunk(chunk.publish_id, chunk.group, chunk.sequence, chunk.arrow_ipc, dict(chunk.feature_versions), chunk.mode,
                           chunk.snapshot_id)


def push_chunks(requests: Iterator[serving_pb2.PushEventsChunk]) -> tuple[str, str, Iterator[tuple[int, bytes]]]:
    """(group, push id, each chunk's sequence and Arrow IPC bytes, read lazily): the first chunk is read here for its group."""
    iterator = iter(requests)
    first = next(iterator, None)
    if first is None:
        raise InvalidArgument("push stream carried no chunks", field="arrow_ipc")
    if not first.group:
        raise InvalidArgument("the first chunk must name the group", field="group")
    group, push_id = first.group, first.push_id
    if len(push_id) > 128:
        raise InvalidArgument("push_id is over 128 characters", field="push_id")

    def tables() -> Iterator[tuple[int, bytes]]:
        expected = 0
        for chunk in itertools.chain((first,), iterator):
            if chunk.group and chunk.group != group:
                raise InvalidArgument("group changed within one push stream", field="group")
            if chunk.push_id != push_id:
                raise InvalidArgument("push_id changed within one push stream", field="push_id")
            if chunk.sequence != expected:
                raise InvalidArgument(f"chunk sequence {chunk.sequence} arrived, expected {expected}", field="sequence")
            expected += 1
            yield chunk.sequence, chunk.arrow_ipc

    return group, push_id, tables()


def push_chunk(push_id: str, group: str, sequence: int, arrow_ipc: bytes) -> serving_pb2.PushEventsChunk:
    return serving_pb2.PushEventsChunk(push_id=push_id, group=group, sequence=sequence, arrow_ipc=arrow_ipc)


def publish_chunk(publish_id: str, group: str, sequence: int, arrow_ipc: bytes, feature_versions: Mapping[str, int], mode: str,
                  snapshot_id: str) -> serving_pb2.PublishChunk:
    return serving_pb2.PublishChunk(publish_id=publish_id, group=group, sequence=sequence, arrow_ipc=arrow_ipc,
                                    feature_versions=dict(feature_versions), mode=int(PublishMode.of(mode)), snapshot_id=snapshot_id)


def publish_response(result: PublishResult) -> serving_pb2.PublishResponse:
    response = serving_pb2.PublishResponse(
        publish_id=result.publish_id, group=result.group, chunks_written=result.chunks_written,
        chunks_skipped_duplicate=result.chunks_skipped_duplicate, rows_received=result.rows_received, rows_accepted=result.rows_accepted,
        rows_rejected=result.rows_rejected, values_written=result.values_written, values_skipped_older=result.values_skipped_older,
        rejections_truncated=result.rejections_truncated, reason_counts=result.reason_counts,
    )
    for r in result.rejections:
        response.rejections.add(row_start=r.row_start, row_end=r.row_end, field=r.field, rule=r.rule, reason=r.reason)
    return response


def publish_result(response: serving_pb2.PublishResponse) -> PublishResult:
    return PublishResult(
        publish_id=response.publish_id, group=response.group, chunks_written=response.chunks_written,
        chunks_skipped_duplicate=response.chunks_skipped_duplicate, rows_received=response.rows_received,
        rows_accepted=response.rows_accepted, rows_rejected=response.rows_rejected, values_written=response.values_written,
        values_skipped_older=response.values_skipped_older,
        rejections=tuple(Rejection(r.row_start, r.row_end, r.field, r.rule, r.reason) for r in response.rejections),
        rejections_truncated=response.rejections_truncated, reason_counts=dict(response.reason_counts),
    )


def publish_status_request(publish_id: str) -> serving_pb2.PublishStatusRequest:
    return serving_pb2.PublishStatusRequest(publish_id=publish_id)


def publish_status_response(status: PublishStatus) -> serving_pb2.PublishStatusResponse:
    return serving_pb2.PublishStatusResponse(publish_id=status.publish_id, known=status.known,
                                             last_durable_sequence=status.last_durable_sequence, group=status.group)


def publish_status(response: serving_pb2.PublishStatusResponse) -> PublishStatus:
    return PublishStatus(response.publish_id, response.known, response.last_durable_sequence, response.group)
