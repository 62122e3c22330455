"""In-process timing of each read-path stage (no gRPC), to see where GetFeatures spends its time.

    python -m loadtests.profile_lookup [--entities 100000] [--per-call 100]
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time

import numpy as np

from fsd import codec
from fsd.config import load_settings
from fsd.domain import KeyType, SystemClock
from fsd.lookup import EntityColumn, LookupLimits, lookup, lookup_encoded, lookup_fast
from fsd.serving import convert
from fsd.serving.server import Daemon
from fsd.serving.wire import ResponseEncoder
from fsd.v1 import serving_pb2
from loadtests import dataset


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        began = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - began) / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--per-call", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="fsd-prof-")
    daemon = Daemon(load_settings(env={}, overrides={"server": {"port": 0}, "store": {"data_dir": data_dir}}))
    daemon.start()
    from fsd.client import Client

    with Client(f"127.0.0.1:{daemon.port}", timeout=300) as client:
        dataset.prepare(client, args.entities)
    store, snapshot, clock = daemon.store, daemon.registry.snapshot(), SystemClock()
    ids = np.array([random.randint(1, args.entities) for _ in range(args.per_call)], dtype=np.int64)
    cols = [EntityColumn("entity_id", KeyType.INT64, ids)]
    refs = dataset.REFS
    resolved = [snapshot.resolve(r) for r in refs]
    entities = codec.encode_entities([ids], [False])
    keys = codec.entity_keys(resolved[0].group_id, entities)
    raw = store.get_many(keys)
    request = serving_pb2.GetFeaturesRequest(
        entities=[serving_pb2.EntityColumn(name="entity_id", int64_values={"values": ids.tolist()})], features=refs
    ).SerializeToString()
    result = lookup(store, snapshot, cols, refs, clock, LookupLimits())
    response = convert.lookup_to_proto(result)
    encoder = ResponseEncoder()
    stages = {
        "parse request": lambda: serving_pb2.GetFeaturesRequest.FromString(request),
        "entities_from_proto": lambda: convert.entities_from_proto(list(serving_pb2.GetFeaturesRequest.FromString(request).entities)),
        "resolve refs (memo)": lambda: [snapshot.resolve(r) for r in refs],
        "encode entities": lambda: codec.encode_entities([ids], [False]),
        "row keys": lambda: codec.entity_keys(resolved[0].group_id, entities),
        "multi-get": lambda: store.get_many(keys),
        "decode 10 columns": lambda: [codec.decode_feature(raw, f.slot, 2) for f in resolved],
        "freshness 10 columns": lambda: [codec.freshness_status(np.ones(len(ids), bool), np.zeros(len(ids), np.int64), 1, 1) for _ in range(10)],
        "lookup() total": lambda: lookup(store, snapshot, cols, refs, clock, LookupLimits()),
        "lookup_to_proto": lambda: convert.lookup_to_proto(result),
        "lookup_encoded (general)": lambda: lookup_encoded(store, snapshot, cols, refs, clock, LookupLimits(), encoder.head),
        "lookup_fast (served)": lambda: lookup_fast(store, snapshot, codec.split_get_request(request), clock, LookupLimits(),
                                                    encoder.head, convert.refs_from_wire),
        "serialize response": lambda: response.SerializeToString(),
    }
    print(f"{args.per_call} entities x 10 features, {args.entities} entities on disk (median µs of {args.repeat})")
    for name, fn in stages.items():
        print(f"  {name:24s} {timed(fn, args.repeat):9.1f}")
    daemon.stop(grace=1)


if __name__ == "__main__":
    main()
