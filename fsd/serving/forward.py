"""A serving worker's way to the one process that may write: every method it does not serve itself goes, bytes in
and bytes out, over a private local channel to the supervisor, with the caller's metadata (its token) and its
remaining deadline; the supervisor's answer or error comes back as it was (status, message, trailing metadata),
so a client cannot tell which process answered."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
from google.protobuf.descriptor import ServiceDescriptor

_NOT_FORWARDED = ("user-agent", "grpc-", ":")  # transport-level keys: the local channel sets its own


def _metadata(context: grpc.ServicerContext) -> tuple[tuple[str, str | bytes], ...]:
    return tuple((k, v) for k, v in (context.invocation_metadata() or ()) if not k.startswith(_NOT_FORWARDED))


def _relay(err: grpc.RpcError, context: grpc.ServicerContext) -> None:
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None  # type: ignore[attr-defined]
    if trailing:
        context.set_trailing_metadata(tuple(trailing))
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    if code == grpc.StatusCode.UNAVAILABLE:
        details = "this node's writer process is not reachable right now; retry"
    else:
        details = err.details() if hasattr(err, "details") else ""  # type: ignore[attr-defined]
    context.abort(code, details or "")


def _forwarding(call: grpc.UnaryUnaryMultiCallable | grpc.StreamUnaryMultiCallable) -> Callable[..., bytes]:
    """A handler sending its request (bytes, or the stream of them) on through `call`, cancelled with its caller."""

    def forward(request: object, context: grpc.ServicerContext) -> bytes:
        future = call.future(request, timeout=context.time_remaining(), metadata=_metadata(context))
        context.add_callback(future.cancel)
        try:
            return future.result()  # type: ignore[no-any-return]
        except grpc.RpcError as err:
            _relay(err, context)
            raise

    return forward


class Forwarder:
    def __init__(self, target: str, max_message_bytes: int) -> None:
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", max_message_bytes),
        ])

    def unary(self, method: str) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        return _forwarding(self._channel.unary_unary(method))  # no serializers: bytes both ways

    def stream(self, method: str) -> Callable[[Iterator[bytes], grpc.ServicerContext], bytes]:
        return _forwarding(self._channel.stream_unary(method))

    def close(self) -> None:
        self._channel.close()


def register_forwarded(server: grpc.Server, service: ServiceDescriptor, forwarder: Forwarder,
                       local: dict[str, grpc.RpcMethodHandler] | None = None) -> None:
    """Every method of `service`: those in `local` served here, the rest forwarded."""
    handlers: dict[str, grpc.RpcMethodHandler] = dict(local or {})
    for method in service.methods:
        if method.name in handlers:
            continue
        path = f"/{service.full_name}/{method.name}"
        if method.client_streaming:
            handlers[method.name] = grpc.stream_unary_rpc_method_handler(forwarder.stream(path))
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(forwarder.unary(path))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
