"""Registers servicers from the proto service descriptors with deserializers that never raise.

grpc answers a request it cannot deserialize with INTERNAL; a malformed request is the caller's error, so
parse failures become a marker that the error interceptor turns into INVALID_ARGUMENT naming the message type.
"""
from __future__ import annotations

from collections.abc import Callable

import grpc
from google.protobuf import message as pb_message
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor

from fsd.errors import InvalidArgument


class MalformedRequest:
    """Stands in for a request whose bytes did not parse."""

    __slots__ = ("type_name", "error")

    def __init__(self, type_name: str, error: str) -> None:
        self.type_name = type_name
        self.error = error


def _safe_parser(cls: type[pb_message.Message]) -> Callable[[bytes], object]:
    name = cls.DESCRIPTOR.full_name

    def parse(data: bytes) -> object:
        try:
            return cls.FromString(data)
        except (pb_message.DecodeError, ValueError, RuntimeError) as exc:
            return MalformedRequest(name, str(exc))

    return parse


def checked(request: object) -> object:
    """The request, or INVALID_ARGUMENT naming the message type if its bytes did not parse."""
    if isinstance(request, MalformedRequest):
        raise InvalidArgument(f"request is not a valid {request.type_name} message: {request.error}")
    return request


def strict_parser(cls: type[pb_message.Message]) -> Callable[[bytes], pb_message.Message]:
    """For a method registered with raw requests: parse when the servicer needs the message."""
    parse = _safe_parser(cls)
    return lambda data: checked(parse(data))  # type: ignore[return-value]


def register(
    server: grpc.Server, service: ServiceDescriptor, servicer: object, raw_responses: frozenset[str] = frozenset(),
    raw_requests: frozenset[str] = frozenset(),
) -> None:
    """Every method of `service` on `servicer`; methods in raw_responses return already-serialised bytes, methods
    in raw_requests receive the request bytes unparsed (they parse with strict_parser when they need to)."""
    handlers = {}
    for method in service.methods:
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        behaviour = getattr(servicer, method.name)
        serializer = None if method.name in raw_responses else response_cls.SerializeToString
        parser = None if method.name in raw_requests else _safe_parser(request_cls)
        if method.client_streaming:
            handlers[method.name] = grpc.stream_unary_rpc_method_handler(behaviour, request_deserializer=parser, response_serializer=serializer)
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(behaviour, request_deserializer=parser, response_serializer=serializer)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
