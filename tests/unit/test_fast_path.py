"""The GetFeatures request split (native, with its pure reference) agrees with protobuf, and the read path's fast
branch (a known plan, one int64 key column) answers exactly what its general branch answers, errors included."""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd import _native
from fsd.serving import lookup as lookup_module
from fsd.client import table_to_ipc
from fsd.codec import _request_py
from fsd.domain import DType, EntityKeySpec, FeatureSpec, FixedClock, GroupSpec, KeyType
from fsd.errors import FsdError
from fsd.serving.lookup import Lookup, LookupLimits
from fsd.online.memory import MemoryOnlineStore
from fsd.registry.registry import Registry
from fsd.publish.publisher import Publisher
from fsd.v1 import serving_pb2
from fsd.wire.serving import ResponseEncoder, get_request, refs_from_wire

NOW = 1_800_000_000_000_000
int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
USERS = GroupSpec("users", (EntityKeySpec("user_id", KeyType.INT64),),
                  (FeatureSpec("spend", DType.DOUBLE), FeatureSpec("tier", DType.STRING)), max_age_seconds=60)
SHOPS = GroupSpec("shops", (EntityKeySpec("shop", KeyType.STRING),), (FeatureSpec("rating", DType.FLOAT),), max_age_seconds=0)
PAIRS = GroupSpec("pairs", (EntityKeySpec("user_id", KeyType.INT64), EntityKeySpec("shop", KeyType.STRING)), (FeatureSpec("visits", DType.INT64),))


def request(columns: list[tuple[str, list[object]]], refs: list[str], manifest: str = "") -> bytes:
    entities = []
    for name, values in columns:
        column = serving_pb2.EntityColumn(name=name)
        if values and isinstance(values[0], str):
            column.string_values.values.extend(values)  # type: ignore[arg-type]
        else:
            column.int64_values.SetInParent()
            column.int64_values.values.extend(values)  # type: ignore[arg-type]
        entities.append(column)
    return serving_pb2.GetFeaturesRequest(entities=entities, features=refs, manifest=manifest).SerializeToString()


entity_columns = st.lists(
    st.tuples(st.sampled_from(["user_id", "shop", ""]), st.one_of(st.lists(int64s, max_size=5), st.lists(st.text(max_size=4), min_size=1, max_size=5))),
    max_size=2,
)


def _expected_columns(parsed: serving_pb2.GetFeaturesRequest) -> list[tuple[str, object]]:
    out = []
    for c in parsed.entities:
        kind = c.WhichOneof("values")
        out.append((c.name, np.array(c.int64_values.values, dtype="<i8").tobytes() if kind == "int64_values" else list(c.string_values.values)))
    return out


@settings(max_examples=300)
@given(columns=entity_columns, refs=st.lists(st.text(max_size=12), max_size=4), manifest=st.text(max_size=6))
def test_split_agrees_with_protobuf_and_takes_the_common_shape(columns, refs, manifest) -> None:  # type: ignore[no-untyped-def]
    raw = request(columns, refs, manifest)
    split = _native.split_get_request(raw)
    assert split == _request_py.split_get_request(raw)  # the pure reference is the specification
    if not columns or any(name == "" for name, _ in columns):  # protobuf omits an empty name: the general path reports it
        assert split is None
        return
    assert split is not None
    features_key, got_manifest, got_columns = split
    assert serving_pb2.GetFeaturesRequest.FromString(features_key).features == refs
    assert got_manifest == manifest
    assert got_columns == _expected_columns(serving_pb2.GetFeaturesRequest.FromString(raw))


@settings(max_examples=300)
@given(st.binary(max_size=60))
def test_split_of_arbitrary_bytes_never_disagrees_with_protobuf(raw: bytes) -> None:
    split = _native.split_get_request(raw)
    assert split == _request_py.split_get_request(raw)
    if split is None:
        return
    parsed = serving_pb2.GetFeaturesRequest.FromString(raw)  # anything split accepts, protobuf accepts
    features_key, manifest, columns = split
    assert list(parsed.features) == refs_from_wire(features_key)
    assert parsed.manifest == manifest
    assert columns == _expected_columns(parsed)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    registry = Registry(str(tmp_path_factory.mktemp("r") / "r.sqlite"))
    registry.apply([USERS, SHOPS, PAIRS])
    store, clock = MemoryOnlineStore(), FixedClock(NOW)
    publisher = Publisher(store, registry.snapshot, clock)
    ids = [-(2**63), -1, 0, 1, 2, 3, 2**63 - 1]
    times = pa.array([NOW - i * 20_000_000 for i in range(len(ids))], pa.timestamp("us", tz="UTC"))  # some older than 60 s
    users = pa.table({"user_id": pa.array(ids, pa.int64()), "event_timestamp": times,
                      "spend": [float(i) if i % 3 else None for i in range(len(ids))], "tier": [f"t{i}" for i in range(len(ids))]})
    publisher.begin("u", "users").write_chunk(0, table_to_ipc(users))
    shops = pa.table({"shop": ["a", "b"], "event_timestamp": times[:2], "rating": pa.array([1.5, 2.5], pa.float32())})
    publisher.begin("s", "shops").write_chunk(0, table_to_ipc(shops))
    pairs = pa.table({"user_id": pa.array([1, 2], pa.int64()), "shop": ["a", "é"], "event_timestamp": times[:2], "visits": pa.array([7, 9], pa.int64())})
    publisher.begin("q", "pairs").write_chunk(0, table_to_ipc(pairs))
    registry.create_manifest("model", ["users:spend", "users:tier"])
    return registry, store, clock


GROUP_REFS = {"users": ["users:spend", "users:tier", "users:spend@1"], "shops": ["shops:rating"], "pairs": ["pairs:visits"]}
BAD_REFS = ["users:nope", "nope:x", "users:tier@9"]
INTS = st.sampled_from([-(2**63), -1, 0, 1, 2, 3, 2**63 - 1, 42])
STRINGS = st.sampled_from(["a", "b", "é", "zz"])


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    count=st.integers(1, 5),
    names=st.lists(st.sampled_from(["user_id", "shop"]), min_size=1, max_size=2, unique=True),
    fault=st.sampled_from(["none"] * 6 + ["duplicate", "swapped_type", "uneven", "non_nfc", "too_long", "bad_ref", "two_groups"]),
    group=st.sampled_from(["users", "shops", "pairs"]),
    limits=st.sampled_from([LookupLimits()] * 3 + [LookupLimits(max_entities=3), LookupLimits(max_features=1), LookupLimits(max_values=5)]),
    manifest=st.sampled_from(["", "", "", "model", "model@1", "model@2", "other"]),
)
def test_fast_path_answers_what_the_general_path_answers(served, data, count, names, fault, group, limits, manifest) -> None:  # type: ignore[no-untyped-def]
    """Int, string and composite keys, with one fault at a time (duplicate or uneven columns, a key of the wrong type,
    non-NFC or over-long strings, unknown refs, two groups), limits and manifests: with the fast branch on, every
    request (asked twice, so the second finds its plan cached) gets the bytes or the error it gets with it off."""
    registry, store, clock = served
    snapshot = registry.snapshot()
    columns: list[tuple[str, list[object]]] = []
    for name in names:
        ints = (name == "user_id") != (fault == "swapped_type")
        columns.append((name, data.draw(st.lists(INTS if ints else STRINGS, min_size=count, max_size=count))))
    if fault == "duplicate":
        columns.append(columns[0])
    elif fault == "uneven":
        columns[-1] = (columns[-1][0], columns[-1][1] + columns[-1][1][:1])
    elif fault in ("non_nfc", "too_long"):
        strings = [i for i, (_, values) in enumerate(columns) if isinstance(values[0], str)]
        if strings:
            name, values = columns[strings[0]]
            columns[strings[0]] = (name, values[:-1] + ["e\u0301" if fault == "non_nfc" else "x" * 1025])
    refs = data.draw(st.lists(st.sampled_from(GROUP_REFS[group]), min_size=0 if manifest else 1, max_size=3))
    if fault == "bad_ref":
        refs.append(data.draw(st.sampled_from(BAD_REFS)))
    elif fault == "two_groups":
        refs.append(data.draw(st.sampled_from(GROUP_REFS["shops" if group != "shops" else "users"])))
    raw = request(columns, refs, manifest)
    assert _native.split_get_request(raw) is not None
    answers = []
    for fast_branch in (True, False):
        lookup = Lookup(store, clock, limits, refs_from_wire, fast_branch=fast_branch)
        answers.append([_answer(lookup, snapshot, raw) for _ in range(2)])
    assert answers[0] == answers[1]


def _answer(lookup: Lookup, snapshot, raw: bytes) -> object:  # type: ignore[no-untyped-def]
    encoder = ResponseEncoder()
    try:
        fetched = lookup.get_features(snapshot, get_request(raw))
    except FsdError as exc:
        return (type(exc).__name__, exc.message)
    return encoder.encode_rows(fetched)


def _served(registry, store, clock, raw: bytes, limits: LookupLimits | None = None) -> serving_pb2.GetFeaturesResponse:  # type: ignore[no-untyped-def]
    result = _answer(Lookup(store, clock, limits or LookupLimits(), refs_from_wire), registry.snapshot(), raw)
    assert isinstance(result, bytes), result
    return serving_pb2.GetFeaturesResponse.FromString(result)


def test_composite_and_string_keys_are_served(served) -> None:  # type: ignore[no-untyped-def]
    registry, store, clock = served
    column = _served(registry, store, clock, request([("shop", ["é", "a", "zz"]), ("user_id", [2, 1, 1])], ["pairs:visits"])).features[0]
    assert list(column.values.int64_values.values) == [9, 7, 0] and list(column.statuses) == [1, 1, 2]


@pytest.mark.parametrize("manifest", ["", "model"])
def test_the_common_request_takes_the_fast_branch_once_planned(served, manifest: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    registry, store, clock = served
    raw = request([("user_id", [1, 2, 42])], [] if manifest else ["users:spend", "users:tier"], manifest)
    lookup = Lookup(store, clock, LookupLimits(), refs_from_wire)
    first = _answer(lookup, registry.snapshot(), raw)
    monkeypatch.setattr(lookup_module, "_check_entities", lambda *a: pytest.fail("the general branch ran for a planned request"))
    assert _answer(lookup, registry.snapshot(), raw) == first
    response = serving_pb2.GetFeaturesResponse.FromString(first)  # type: ignore[arg-type]
    assert [c.ref for c in response.features] == ["users:spend", "users:tier"]  # a manifest's columns are named as in training (#24)
    assert [c.version for c in response.features] == [1, 1]
    assert list(response.features[1].values.string_values.values) == ["t3", "t4", ""]
    assert list(response.features[1].statuses) == [1, 3, 2]  # 60 s and 80 s old against a 60 s max age; 42 unknown
    assert response.manifest == ("model@1" if manifest else "")


@pytest.mark.parametrize("limits", [LookupLimits(max_entities=2), LookupLimits(max_features=1), LookupLimits(max_values=5)])
def test_requests_over_a_limit_are_refused_even_with_a_planned_shape(served, limits: LookupLimits) -> None:  # type: ignore[no-untyped-def]
    registry, store, clock = served
    raw = request([("user_id", [1, 2, 3])], ["users:spend", "users:tier"])  # 3 entities, 2 features, 6 values
    lookup = Lookup(store, clock, limits, refs_from_wire)
    assert _answer(Lookup(store, clock, LookupLimits(), refs_from_wire), registry.snapshot(), raw)
    for _ in range(2):
        name, message = _answer(lookup, registry.snapshot(), raw)  # type: ignore[misc]
        assert name == "ResourceExhausted" and "limit" in message


def test_a_string_column_under_an_int64_key_name_is_refused(served) -> None:  # type: ignore[no-untyped-def]
    registry, store, clock = served
    raw = request([("user_id", [str(i) for i in range(12)])], ["users:spend"])
    name, message = _answer(Lookup(store, clock, LookupLimits(), refs_from_wire), registry.snapshot(), raw)  # type: ignore[misc]
    assert name == "InvalidArgument" and "'user_id' is string" in message
