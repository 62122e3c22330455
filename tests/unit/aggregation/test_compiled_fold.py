"""Property: the compiled fold (fsd._native.fold_tiles, through fsd.aggregation.batch_fold) writes exactly
the bytes the Python path writes (tiles.decode, FeatureTiles.add_rows in arrival order, drop_expired,
tiles.encode) — for batches over several entities, stored blobs from earlier batches (with slots of other
functions kept byte for byte), every function (last over strings, floats, ints and bools; count_distinct's
HyperLogLog registers), filters, nulls, ties, negative and huge values, tiles expiring."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from fsd import codec
from fsd.aggregation import batch_fold, tiles
from fsd.domain.aggregation import Aggregation

pytestmark = pytest.mark.skipif(not batch_fold.available([Aggregation("count", "", 60)]), reason="the compiled codec is not built")

MIN = 60_000_000
T0 = 1_700_000_000_000_000 // MIN * MIN
HOUR = 3600
NUMERIC = [  # windows of hours (tiles of minutes): the runs below cross window and tile edges and let tiles expire
    Aggregation("count", "", HOUR), Aggregation("count", "amount", 2 * HOUR), Aggregation("sum", "amount", HOUR),
    Aggregation("mean", "amount", 3 * HOUR), Aggregation("min", "amount", HOUR), Aggregation("max", "amount", 2 * HOUR),
    Aggregation("sum", "amount", HOUR, "amount > 10"), Aggregation("count", "", HOUR, "merchant == 'm1'"),
    Aggregation("max", "qty", HOUR, "qty >= 2"),
]
OTHER = [Aggregation("last", "merchant", HOUR), Aggregation("count_distinct", "merchant", 2 * HOUR)]
FOLDED = NUMERIC + [  # last and count_distinct over every column type the compiled fold keeps
    Aggregation("last", "merchant", HOUR), Aggregation("last", "amount", 2 * HOUR), Aggregation("last", "qty", HOUR),
    Aggregation("last", "flag", HOUR), Aggregation("last", "merchant", HOUR, "amount > 10"), Aggregation("count_distinct", "merchant", HOUR),
    Aggregation("count_distinct", "amount", 2 * HOUR), Aggregation("count_distinct", "qty", HOUR), Aggregation("count_distinct", "flag", HOUR),
]
LATENESS = 20 * MIN
minutes_and_seconds = st.tuples(st.integers(0, 240), st.integers(0, 59_999_999)).map(lambda ms: ms[0] * MIN + ms[1])


def _python_fold(folders: list[tiles.FeatureTiles], keys: list[bytes], stored: dict[bytes, bytes | None], batch: pa.Table,
                 now: int, seq: int) -> dict[bytes, bytes]:
    states = {key: tiles.decode(raw) if raw is not None else {} for key, raw in stored.items()}
    times = batch["event_timestamp"].to_pylist()
    arrivals = [(now, seq, i) for i in range(batch.num_rows)]
    values = {name: batch[name].to_pylist() for name in ("amount", "merchant", "qty", "flag")}
    for folder in folders:
        per_row = []
        for key in keys:
            state = states[key].get(folder.slot)
            if state is None:
                state = states[key][folder.slot] = tiles.SlotTiles(folder.agg.function)
            per_row.append(state)
        folder.add_rows(per_row, times, arrivals, values)
    for key in dict.fromkeys(keys):
        for folder in folders:
            folder.drop_expired(states[key][folder.slot], now)
    return {key: tiles.encode(states[key], seq) for key in dict.fromkeys(keys)}


amounts = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([0.0, -0.0, 10.0, 0.1, 1e300, -1e300]))


@st.composite
def batches(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(1, 60))
    entities = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    offsets = draw(st.lists(minutes_and_seconds, min_size=n, max_size=n))
    amount = draw(st.lists(amounts, min_size=n, max_size=n))
    merchant = draw(st.lists(st.one_of(st.none(), st.sampled_from(["m1", "m2", "m3"])), min_size=n, max_size=n))
    qty = draw(st.lists(st.one_of(st.none(), st.integers(-5, 2**62)), min_size=n, max_size=n))
    flag = draw(st.lists(st.one_of(st.none(), st.booleans()), min_size=n, max_size=n))
    now = T0 + draw(st.integers(100 * MIN, 260 * MIN))
    return entities, [T0 + o for o in offsets], amount, merchant, qty, flag, now


@settings(max_examples=300, deadline=None)
@given(st.lists(batches(), min_size=1, max_size=3), st.sets(st.sampled_from(range(len(FOLDED))), min_size=1, max_size=4),
       st.booleans())
def test_the_compiled_fold_writes_the_python_paths_bytes(history: list, chosen: set, with_other: bool) -> None:  # type: ignore[type-arg]
    folders = [tiles.FeatureTiles(10 + i, FOLDED[i], LATENESS) for i in sorted(chosen)]
    others = [tiles.FeatureTiles(3 + i, a, LATENESS) for i, a in enumerate(OTHER)] if with_other else []
    stored: dict[bytes, bytes | None] = {}
    for seq, (entities, times, amount, merchant, qty, flag, now) in enumerate(history, start=1):
        n = len(times)
        batch = pa.table({"event_timestamp": pa.array(times, pa.int64()), "amount": pa.array(amount, pa.float64()),
                          "merchant": pa.array(merchant, pa.string()), "qty": pa.array(qty, pa.int64()), "flag": pa.array(flag, pa.bool_()),
                          "received_timestamp": pa.array([now] * n, pa.int64()), "_seq": pa.array([seq] * n, pa.int64()),
                          "_row": pa.array(range(n), pa.int64())})
        keys = [b"e%d" % e for e in entities]
        before = {key: stored.get(key) for key in dict.fromkeys(keys)}
        if others:  # another feature of the group (a last, a count_distinct) already in the stored blobs
            for key, blob in list(before.items()):
                states = tiles.decode(blob) if blob is not None else {}
                for o in others:
                    state = states.setdefault(o.slot, tiles.SlotTiles(o.agg.function))
                    o.add(state, T0 + seq * MIN, (now, seq, 0), {"merchant": f"m{seq}"})
                before[key] = tiles.encode(states, seq - 1)
        expected = _python_fold(folders, keys, before, batch, now, seq)
        got = dict(batch_fold.fold_batch(keys, [before[k] for k in dict.fromkeys(keys)], batch,
                                         np.array(times, dtype=np.int64), folders, now, seq))
        assert got == expected
        stored.update(got)


def test_refuses_a_corrupt_blob_and_a_function_it_does_not_fold() -> None:
    folder = tiles.FeatureTiles(1, Aggregation("sum", "amount", 60), LATENESS)
    batch = pa.table({"event_timestamp": pa.array([T0], pa.int64()), "amount": pa.array([1.0]), "merchant": pa.array(["m1"]),
                      "qty": pa.array([1]), "received_timestamp": pa.array([T0]), "_seq": pa.array([1]), "_row": pa.array([0])})
    good = dict(batch_fold.fold_batch([b"e"], [None], batch, np.array([T0]), [folder], T0, 1))[b"e"]
    with pytest.raises(ValueError, match="truncated|format"):
        batch_fold.fold_batch([b"e"], [good[:-3]], batch, np.array([T0]), [folder], T0, 2)
    last = tiles.FeatureTiles(1, Aggregation("last", "amount", 60), LATENESS)
    assert not batch_fold.available([folder.agg, last.agg])  # training values of `last`: the Python fold
    assert batch_fold.push_available(batch, [folder.agg, last.agg])
    odd = batch.append_column("when", pa.array([T0], pa.timestamp("us", tz="UTC")))
    assert not batch_fold.push_available(odd, [Aggregation("last", "when", 60)])  # a value kind it does not encode
    assert codec.NATIVE


def _values(column) -> list[object]:  # type: ignore[no-untyped-def]
    return column.values.to_pylist() if isinstance(column.values, pa.Array) else list(column.values)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), minutes_and_seconds, st.integers(0, 30 * MIN), amounts,
                          st.one_of(st.none(), st.sampled_from(["m1", "m2"])), st.one_of(st.none(), st.integers(-5, 5))), min_size=1, max_size=80),
       st.data(), st.one_of(st.none(), minutes_and_seconds), st.booleans(), st.booleans())
def test_compiled_training_values_equal_the_python_paths(raw: list, data, as_of: int | None, string_keys: bool, log_order: bool) -> None:  # type: ignore[no-untyped-def, type-arg]
    """fsd.aggregation.offline.compute through the compiled kernel against its Python path: values, statuses and
    event times for every numeric function, with ties, filters, nulls, labels of entities without events, as_of.
    Labels fall near the window edges of the events (an event's time plus 0-3 windows, give or take a tile)."""
    near = st.tuples(st.sampled_from([r[1] for r in raw]), st.sampled_from([0, HOUR, 2 * HOUR, 3 * HOUR]), st.integers(-4 * MIN, 4 * MIN))
    labels = data.draw(st.lists(st.tuples(st.integers(0, 6), st.one_of(minutes_and_seconds, near.map(lambda x: x[0] + x[1] * 1_000_000 + x[2]))),
                                min_size=1, max_size=30))
    from unittest import mock

    from fsd.aggregation import offline

    if log_order:  # as the event log is written (in arrival order): the kernel then only groups by entity
        raw = sorted(raw, key=lambda r: r[1] + r[2])

    ts = pa.timestamp("us", tz="UTC")
    key = (lambda e: f"c{e}") if string_keys else (lambda e: e)
    key_type = pa.string() if string_keys else pa.int64()
    events = pa.table({"card": pa.array([key(r[0]) for r in raw], key_type), "event_timestamp": pa.array([T0 + r[1] for r in raw], ts),
                       "received_timestamp": pa.array([T0 + r[1] + r[2] for r in raw], ts), "_seq": pa.array([i // 7 for i in range(len(raw))], pa.int64()),
                       "_row": pa.array([i % 7 for i in range(len(raw))], pa.int64()), "amount": pa.array([r[3] for r in raw], pa.float64()),
                       "merchant": pa.array([r[4] for r in raw], pa.string()), "qty": pa.array([r[5] for r in raw], pa.int64())})
    label_table = pa.table({"card": pa.array([key(e) for e, _ in labels], key_type), "event_timestamp": pa.array([T0 + o for _, o in labels], ts)})
    features = [offline.ComputedFeature(f"f{i}", agg, 30 * MIN) for i, agg in enumerate(NUMERIC)]
    as_of_micros = None if as_of is None else T0 + as_of
    got = offline.compute(events, label_table, ["card"], "event_timestamp", features, ["amount", "merchant", "qty"], as_of_micros)
    with mock.patch.object(offline.batch_fold, "available", lambda _: False):
        want = offline.compute(events, label_table, ["card"], "event_timestamp", features, ["amount", "merchant", "qty"], as_of_micros)
    for f in features:
        assert _values(got[f.name]) == _values(want[f.name]), f.aggregation
        assert got[f.name].status.tolist() == want[f.name].status.tolist()
        assert got[f.name].event_micros.tolist() == want[f.name].event_micros.tolist()


@settings(max_examples=200, deadline=None)
@given(batches(), st.lists(st.integers(0, 300 * MIN), min_size=1, max_size=6))
def test_compiled_read_values_equal_feature_tiles_value_at(case: tuple, read_offsets: list) -> None:  # type: ignore[type-arg]
    """What GetFeatures combines from a blob (fsd.serving.lookup.tile_values, compiled) equals FeatureTiles.value_at
    over the decoded blob, for every function, at instants across window and tile edges."""
    from unittest import mock

    from fsd.domain import DType
    from fsd.serving import lookup

    entities, times, amount, merchant, qty, flag, now = case
    folders = [tiles.FeatureTiles(10 + i, agg, LATENESS) for i, agg in enumerate(FOLDED)]
    n = len(times)
    batch = pa.table({"event_timestamp": pa.array(times, pa.int64()), "amount": pa.array(amount, pa.float64()),
                      "merchant": pa.array(merchant, pa.string()), "qty": pa.array(qty, pa.int64()), "flag": pa.array(flag, pa.bool_()),
                      "received_timestamp": pa.array([now] * n, pa.int64()), "_seq": pa.array([1] * n, pa.int64()), "_row": pa.array(range(n), pa.int64())})
    keys = [b"e%d" % e for e in entities]
    blobs = _python_fold(folders, keys, {key: None for key in keys}, batch, now, 1)
    reads = tuple(lookup.ComputedRead(f, DType.DOUBLE, 0) for f in folders)
    for blob in blobs.values():
        for offset in read_offsets:
            t = T0 + offset
            got = lookup.tile_values(blob, reads, t)
            with mock.patch.object(lookup, "_compiled_tile_values", None):
                want = lookup.tile_values(blob, reads, t)
            assert got == want
            assert lookup.tile_values(blob, reads[:1] + (lookup.ComputedRead(tiles.FeatureTiles(99, FOLDED[0], LATENESS), DType.INT64, 0),), t)[1] is None
