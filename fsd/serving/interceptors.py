"""Server interceptor that turns fsd errors into gRPC statuses, so servicers stay free of status handling."""
from __future__ import annotations

import logging
from collections.abc import Callable

import grpc

from fsd.errors import FsdError
from fsd.serving.registration import checked

logger = logging.getLogger(__name__)


def _status(error: FsdError) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN)


def _checked_stream(requests):  # type: ignore[no-untyped-def]
    for request in requests:
        yield checked(request)


def _guard(behaviour: Callable, method: str, streaming: bool = False) -> Callable:  # type: ignore[type-arg]
    def wrapped(request, context):  # type: ignore[no-untyped-def]
        try:
            if streaming:
                request = _checked_stream(request)
            else:
                checked(request)
            if not streaming:
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline expired before the call was handled")
            return behaviour(request, context)
        except FsdError as exc:
            if exc.code == "INTERNAL":
                logger.error("%s failed: %s", method, exc.message)
                context.abort(grpc.StatusCode.INTERNAL, "internal storage error (see daemon log)")
            context.abort(_status(exc), exc.message)

    return wrapped


class WrappingInterceptor(grpc.ServerInterceptor):
    """Wraps each method's behaviour once and serves the cached handler afterwards (no per-call rebuilding).

    Subclasses say how to wrap one behaviour; unary-unary and client-streaming methods are wrapped.
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def wrap(self, behaviour: Callable, method: str, streaming: bool) -> Callable:  # type: ignore[type-arg]
        raise NotImplementedError

    def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = continuation(handler_call_details)
        if handler is None or not (handler.unary_unary or handler.stream_unary):
            return handler
        if handler.unary_unary:
            wrapped = grpc.unary_unary_rpc_method_handler(
                self.wrap(handler.unary_unary, method, False), handler.request_deserializer, handler.response_serializer
            )
        else:
            wrapped = grpc.stream_unary_rpc_method_handler(
                self.wrap(handler.stream_unary, method, True), handler.request_deserializer, handler.response_serializer
            )
        self._wrapped[method] = wrapped
        return wrapped


class ErrorMappingInterceptor(WrappingInterceptor):
    """Maps FsdError subclasses to their status code with the error's own message (which names the field/rule)."""

    def wrap(self, behaviour: Callable, method: str, streaming: bool) -> Callable:  # type: ignore[type-arg]
        return _guard(behaviour, method, streaming)
