"""The public gRPC server of the daemon and of each worker: its options and its two thread pools.

Why two pools: on one process every handler shares the GIL with gRPC's single dispatch thread, which admits and
refuses calls. A cached GetFeatures is pure CPU under the GIL, so each busy handler thread is one more contender
that dispatch waits behind (CPython hands the GIL over only every switch interval). Measured on 2 cores at twice
capacity (`python -m loadtests.bench_shedding`): 4 read threads kept refusals waiting p50 0.9 s and let admitted
calls time out; 2 refused in a few ms. But publish streams, health watches and slow admin calls hold a thread for
their whole life, so a read pool that small would starve behind them. Hence: GetFeatures runs on a small pool of
`server.max_workers` threads; every other method on a control pool of its own (gRPC's per-method
`experimental_thread_pool`), so neither can take the other's threads.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent import futures

import grpc

from fsd.config import ServerSettings

READ_METHODS = frozenset({"/fsd.v1.FeatureStore/GetFeatures"})
CONTROL_SPARE_THREADS = 4  # beyond the publish streams: admin calls, health watches, forwarding


def server_options(s: ServerSettings, reuseport: bool) -> list[tuple[str, int]]:
    """The public server's channel options: message sizes; dead peers noticed, and long-lived connections recycled
    so load rebalances; SO_REUSEPORT only where a node's workers share the port."""
    return [
        ("grpc.max_receive_message_length", s.max_message_bytes),
        ("grpc.max_send_message_length", s.max_message_bytes),
        ("grpc.so_reuseport", 1 if reuseport else 0),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.max_connection_age_ms", 30 * 60_000),
        ("grpc.max_connection_age_grace_ms", 30_000),
    ]


class _OnPool:
    """A method's behaviour that tells gRPC which pool runs it (gRPC reads `experimental_thread_pool`); a
    non-blocking one (the health Watch) stays non-blocking."""

    __slots__ = ("_behaviour", "experimental_thread_pool", "experimental_non_blocking")

    def __init__(self, behaviour: Callable, pool: futures.ThreadPoolExecutor) -> None:  # type: ignore[type-arg]
        self._behaviour = behaviour
        self.experimental_thread_pool = pool
        self.experimental_non_blocking = bool(getattr(behaviour, "experimental_non_blocking", False))

    def __call__(self, request, context, *more, **kwargs):  # type: ignore[no-untyped-def]
        return self._behaviour(request, context, *more, **kwargs)  # a non-blocking one gets send_response_callback


_KINDS = (
    ("unary_unary", grpc.unary_unary_rpc_method_handler),
    ("unary_stream", grpc.unary_stream_rpc_method_handler),
    ("stream_unary", grpc.stream_unary_rpc_method_handler),
    ("stream_stream", grpc.stream_stream_rpc_method_handler),
)


class ControlPoolRouting(grpc.ServerInterceptor):
    """The outermost interceptor: every method but the reads runs on the control pool."""

    def __init__(self, pool: futures.ThreadPoolExecutor, read_methods: frozenset[str] = READ_METHODS) -> None:
        self._pool = pool
        self._read_methods = read_methods
        self._routed: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        method = handler_call_details.method
        handler = continuation(handler_call_details)  # per call: the inner ones may answer by caller (a denial)
        if handler is None or method in self._read_methods:
            return handler
        cached = self._routed.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        for kind, make in _KINDS:
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                routed = make(_OnPool(behaviour, self._pool), handler.request_deserializer, handler.response_serializer)
                break
        else:
            return handler
        self._routed[method] = (handler, routed)
        return routed


def control_threads(max_concurrent_publishes: int) -> int:
    return max_concurrent_publishes + CONTROL_SPARE_THREADS


def new_server(s: ServerSettings, interceptors: Sequence[grpc.ServerInterceptor], *, reuseport: bool, name: str,
               max_concurrent_publishes: int) -> grpc.Server:
    """A gRPC server whose reads and whose other calls run on separate pools (see the module docstring)."""
    control = futures.ThreadPoolExecutor(max_workers=control_threads(max_concurrent_publishes), thread_name_prefix=f"{name}-control")
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=s.max_workers, thread_name_prefix=f"{name}-read"),
        interceptors=[ControlPoolRouting(control), *interceptors],
        options=server_options(s, reuseport),
        maximum_concurrent_rpcs=s.max_concurrent_rpcs or None,
    )


__all__ = ["ControlPoolRouting", "READ_METHODS", "control_threads", "new_server", "server_options"]
