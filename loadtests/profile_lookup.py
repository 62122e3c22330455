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
from fsd.domain import SystemClock
from fsd.serving.lookup import Lookup, LookupLimits
from fsd.serving.server import Daemon
from fsd.v1 import serving_pb2
from fsd.wire.serving import ResponseEncoder, get_request, refs_from_wire
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
    refs = dataset.REFS
    resolved = [snapshot.resolve(r) for r in refs]
    entities = codec.encode_entities([ids], [False])
    keys = codec.entity_keys(resolved[0].group_id, entities)
    raw = store.get_many(keys)
    request = serving_pb2.GetFeaturesRequest(
        entities=[serving_pb2.EntityColumn(name="entity_id", int64_values={"values": ids.tolist()})], features=refs
    ).SerializeToString()
    encoder = ResponseEncoder()
    fast = Lookup(store, clock, LookupLimits(), refs_from_wire)
    general = Lookup(store, clock, LookupLimits(), refs_from_wire, fast_branch=False)
    split = get_request(request)
    fetched = fast.get_features(snapshot, split)
    response_bytes = encoder.encode_rows(fetched)
    stages = {
        "parse request (protobuf)": lambda: serving_pb2.GetFeaturesRequest.FromString(request),
        "split request": lambda: get_request(request),
        "resolve refs (memo)": lambda: [snapshot.resolve(r) for r in refs],
        "encode entities": lambda: codec.encode_entities([ids], [False]),
        "row keys": lambda: codec.entity_keys(resolved[0].group_id, entities),
        "multi-get": lambda: store.get_many(keys),
        "decode 10 columns": lambda: [codec.decode_feature(raw, f.slot, 2) for f in resolved],
        "freshness 10 columns": lambda: [codec.freshness_status(np.ones(len(ids), bool), np.zeros(len(ids), np.int64), 1, 1) for _ in range(10)],
        "read (general branch)": lambda: general.get_features(snapshot, split),
        "read (fast branch)": lambda: fast.get_features(snapshot, split),
        "encode reply": lambda: encoder.encode_rows(fetched),
        "parse response (client)": lambda: serving_pb2.GetFeaturesResponse.FromString(response_bytes),
    }
    print(f"{args.per_call} entities x 10 features, {args.entities} entities on disk (median µs of {args.repeat})")
    for name, fn in stages.items():
        print(f"  {name:24s} {timed(fn, args.repeat):9.1f}")
    daemon.stop(grace=1)


if __name__ == "__main__":
    main()
