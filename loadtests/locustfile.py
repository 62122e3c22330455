"""Locust gRPC users for fsd: GetFeatures 1×10 and 100×10, plus a small Publish mix.

    locust -f loadtests/locustfile.py --headless -u 16 -r 16 -t 30s --host 127.0.0.1:50051 --csv results/fsd

The first user applies the bench group and publishes --bench-entities rows (default 20000) if the group is
empty, so a fresh `fsd serve` is enough. Only loopback targets are allowed.
"""
from __future__ import annotations

import random
import time
import uuid

import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()  # must run before any channel exists: locust users are greenlets

import gevent.lock  # noqa: E402
import grpc  # noqa: E402
from locust import User, events, task  # noqa: E402

from fsd.client import Client, table_to_ipc  # noqa: E402
from fsd.v1 import serving_pb2, serving_pb2_grpc  # noqa: E402
from loadtests import dataset  # noqa: E402

_prepared = False
_prepare_lock = gevent.lock.Semaphore()


@events.init_command_line_parser.add_listener
def _options(parser) -> None:  # type: ignore[no-untyped-def]
    parser.add_argument("--bench-entities", type=int, default=20_000, help="entities to publish before the run")


def _check_loopback(host: str) -> str:
    name = host.rsplit(":", 1)[0].strip("[]")
    if name not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load-test {host}: loopback targets only")
    return host


class FsdUser(User):
    """One gRPC channel per user; every call is reported to Locust with its latency and outcome."""

    def on_start(self) -> None:
        global _prepared
        target = _check_loopback(self.host or "127.0.0.1:50051")
        self.entities = self.environment.parsed_options.bench_entities if self.environment.parsed_options else 20_000
        with _prepare_lock:  # every user waits until the data is there
            if not _prepared:
                with Client(target, timeout=300) as client:
                    probe = client.get_features([dataset.REFS[0]], {"entity_id": [1]}) if self._group_exists(client) else None
                    if probe is None or probe[dataset.REFS[0]].status_names()[0] == "NOT_FOUND":
                        dataset.prepare(client, self.entities)
                _prepared = True
        self.channel = grpc.insecure_channel(target)
        self.stub = serving_pb2_grpc.FeatureStoreStub(self.channel)

    @staticmethod
    def _group_exists(client: Client) -> bool:
        return any(g.definition.name == dataset.GROUP for g in client.list_groups().groups)

    def on_stop(self) -> None:
        self.channel.close()

    def _call(self, name: str, fn, size_of) -> None:  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        error: Exception | None = None
        length = 0
        try:
            length = size_of(fn())
        except grpc.RpcError as exc:
            error = exc
        events.request.fire(
            request_type="grpc", name=name, response_time=(time.perf_counter() - began) * 1000, response_length=length, exception=error
        )

    def _get(self, count: int) -> serving_pb2.GetFeaturesRequest:
        ids = [random.randint(1, self.entities) for _ in range(count)]
        return serving_pb2.GetFeaturesRequest(
            entities=[serving_pb2.EntityColumn(name="entity_id", int64_values={"values": ids})], features=dataset.REFS
        )

    @task(20)
    def get_1x10(self) -> None:
        self._call("GetFeatures 1x10", lambda: self.stub.GetFeatures(self._get(1), timeout=10), lambda r: r.ByteSize())

    @task(5)
    def get_100x10(self) -> None:
        self._call("GetFeatures 100x10", lambda: self.stub.GetFeatures(self._get(100), timeout=10), lambda r: r.ByteSize())

    @task(1)
    def publish_small(self) -> None:
        start = random.randint(1, max(1, self.entities - 100))
        chunk = serving_pb2.PublishChunk(
            publish_id=uuid.uuid4().hex, group=dataset.GROUP, sequence=0, arrow_ipc=table_to_ipc(dataset.table(start, 100))
        )
        self._call("Publish 100 rows", lambda: self.stub.Publish(iter([chunk]), timeout=30), lambda r: r.values_written)
