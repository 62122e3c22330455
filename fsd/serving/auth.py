"""Token authentication with scopes (read, write, admin), checked in a server interceptor in constant time.

Tokens come from a file (JSON: {"tokens": [{"name": ..., "token": ..., "scopes": [...]}]}); with no file,
authentication is off (the loopback default). Tokens are never logged; only the token's name is.
"""
from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc

from fsd.errors import InvalidArgument

logger = logging.getLogger(__name__)

SCOPES = ("read", "write", "admin")
_OPEN = {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"}
# Scope each method needs; anything not listed (a new RPC) needs admin until it is classified.
METHOD_SCOPES = {
    "/fsd.v1.FeatureStore/GetFeatures": "read",
    "/fsd.v1.FeatureStore/Publish": "write",
    "/fsd.v1.FeatureStore/PushEvents": "write",
    "/fsd.v1.FeatureStore/PublishStatus": "write",
    "/fsd.v1.Registry/ListGroups": "read",
    "/fsd.v1.Registry/Plan": "read",
    "/fsd.v1.Registry/GetGroup": "read",
    "/fsd.v1.Registry/History": "read",
    "/fsd.v1.Registry/GetManifest": "read",
    "/fsd.v1.Registry/ListManifests": "read",
    "/fsd.v1.Registry/ListIncidents": "read",
    "/fsd.v1.Registry/ListSyncRuns": "read",
    "/fsd.v1.Registry/GetDeployment": "read",
    "/fsd.v1.Registry/ListReplicas": "read",
    "/fsd.v1.Registry/RecordOfflineWrite": "write",
    "/fsd.v1.Registry/RecordSyncRun": "write",
    "/fsd.v1.Registry/Apply": "admin",
    "/fsd.v1.Registry/Promote": "admin",
    "/fsd.v1.Registry/Retire": "admin",
    "/fsd.v1.Registry/CreateManifest": "admin",
    "/fsd.v1.Registry/ResolveIncident": "admin",
    "/fsd.v1.Registry/Backup": "admin",
    "/fsd.v1.Registry/DeleteManifest": "admin",
    "/fsd.v1.Registry/DeleteGroup": "admin",
    "/fsd.v1.Monitor/GetStatus": "read",
    "/fsd.v1.Monitor/PendingResyncs": "read",
    "/fsd.v1.Monitor/AckResync": "write",
    "/fsd.v1.Monitor/Validate": "admin",
    "/fsd.v1.Monitor/SetBlocked": "admin",
}


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    token: bytes
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes or (scope == "read" and "write" in self.scopes)


def load_tokens(path: str) -> list[Principal]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"tokens file {path}: {exc}") from None
    principals = []
    for i, entry in enumerate(data.get("tokens", []) if isinstance(data, dict) else []):
        token, scopes = entry.get("token"), entry.get("scopes")
        if not isinstance(token, str) or len(token) < 16:
            raise InvalidArgument(f"tokens file {path}: entry {i} needs a token of at least 16 characters")
        if not isinstance(scopes, list) or not scopes or any(s not in SCOPES for s in scopes):
            raise InvalidArgument(f"tokens file {path}: entry {i} scopes must be a list drawn from {', '.join(SCOPES)}")
        principals.append(Principal(str(entry.get("name", f"token-{i}")), token.encode(), frozenset(scopes)))
    if not principals:
        raise InvalidArgument(f"tokens file {path}: no tokens")
    return principals


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, principals: list[Principal]) -> None:
        self._principals = principals

    def _who(self, metadata: tuple) -> Principal | None:  # type: ignore[type-arg]
        headers = [value for key, value in metadata or () if key == "authorization"]
        if len(headers) != 1:
            return None  # none, or several: never guess which one was meant
        value = headers[0]
        presented = value[7:].encode() if isinstance(value, str) and value.startswith("Bearer ") else b""
        found = None
        for principal in self._principals:  # compare with every token, no early exit: timing says nothing
            if hmac.compare_digest(principal.token, presented) and found is None:
                found = principal
        return found

    def allows_header(self, header: str, scope: str) -> bool:
        """Whether an HTTP Authorization header carries a token with `scope` (the status page)."""
        principal = self._who((("authorization", header),))
        return principal is not None and principal.allows(scope)

    def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        method = handler_call_details.method
        if method in _OPEN or method.startswith("/grpc.reflection."):
            return continuation(handler_call_details)
        metadata = handler_call_details.invocation_metadata
        principal = self._who(metadata)
        scope = METHOD_SCOPES.get(method, "admin")
        if principal is None:
            several = sum(1 for key, _ in metadata or () if key == "authorization") > 1
            message = ("more than one 'authorization' header: send exactly one" if several
                       else "missing or unknown bearer token (metadata 'authorization: Bearer <token>')")
            return _deny(continuation(handler_call_details), grpc.StatusCode.UNAUTHENTICATED, message)
        if not principal.allows(scope):
            logger.warning("token %s denied %s (needs scope %s)", principal.name, method, scope)
            return _deny(continuation(handler_call_details), grpc.StatusCode.PERMISSION_DENIED,
                         f"token {principal.name!r} lacks the {scope!r} scope needed by {method}")
        return continuation(handler_call_details)


def _deny(handler: grpc.RpcMethodHandler | None, code: grpc.StatusCode, message: str):  # type: ignore[no-untyped-def]
    """A handler of the same kind as the method's (a streaming method needs a streaming handler, or the caller
    sees UNIMPLEMENTED instead of the refusal) that refuses without reading the request."""
    def abort(request, context):  # type: ignore[no-untyped-def]
        context.abort(code, message)

    if handler is not None and handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)
