"""Server interceptor that turns fsd errors into gRPC statuses, so servicers stay free of status handling."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import grpc

from fsd.errors import FsdError
from fsd.serving.registration import checked

logger = logging.getLogger(__name__)


MAX_MESSAGE_CHARS = 2000  # status messages travel in HTTP/2 trailers: far below gRPC's 8 KiB metadata limit


def capped(message: str) -> str:
    """A status message never grows with the caller's input (an oversized one would turn into RESOURCE_EXHAUSTED)."""
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 20] + "… (message cut)"


def metadata_safe(text: str) -> str:
    """A metadata value gRPC accepts: printable ASCII only, anything else backslash-escaped. A field named from the
    caller's input (a column called "\\x00id" or "prix_€") would otherwise fail the call with INTERNAL."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in text)


def _status(error: FsdError) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN)


def _checked_stream(requests):  # type: ignore[no-untyped-def]
    for request in requests:
        yield checked(request)


class InFlight:
    """Counts handlers running, so shutdown knows whether closing the stores is safe."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._idle:
            self._count -= 1
            if not self._count:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout=max(0.0, timeout))


def _guard(behaviour: Callable, method: str, streaming: bool, in_flight: InFlight) -> Callable:  # type: ignore[type-arg]
    def wrapped(request, context):  # type: ignore[no-untyped-def]
        with in_flight:
            return _call(request, context)

    def _call(request, context):  # type: ignore[no-untyped-def]
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
            if exc.field:
                context.set_trailing_metadata((("fsd-field", metadata_safe(exc.field[:200])),))  # the client's error carries it
            context.abort(_status(exc), capped(exc.message))

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
    """Maps FsdError subclasses to their status code with the error's own message (which names the field/rule),
    and counts the handlers in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = InFlight()

    def wrap(self, behaviour: Callable, method: str, streaming: bool) -> Callable:  # type: ignore[type-arg]
        return _guard(behaviour, method, streaming, self.in_flight)
