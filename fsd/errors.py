"""The fsd error tree; each class knows its gRPC status code, so one server interceptor and one client mapping
translate them and nothing else in fsd handles status codes.

    FsdError
    ├── InvalidArgument      INVALID_ARGUMENT     bad request field, bad definition, bad chunk
    ├── NotFound             NOT_FOUND            unknown group, feature, version, manifest, incident
    ├── FailedPrecondition   FAILED_PRECONDITION  the state does not allow it (refused change, retired version)
    ├── AlreadyExists        ALREADY_EXISTS
    ├── ResourceExhausted    RESOURCE_EXHAUSTED   request over a configured limit, or the daemon is overloaded
    ├── Unauthenticated      UNAUTHENTICATED      no token, or an unknown one
    ├── PermissionDenied     PERMISSION_DENIED    the token lacks the scope
    ├── DeadlineExceeded     DEADLINE_EXCEEDED    the call ran past its deadline
    ├── Cancelled            CANCELLED            the call was cancelled
    ├── Unavailable          UNAVAILABLE          no daemon at the target, or it is shutting down
    ├── Unimplemented        UNIMPLEMENTED        the daemon does not know the method (an older fsd)
    └── StorageError         INTERNAL             the storage engine failed (details logged, not sent)
"""
from __future__ import annotations

MAX_ECHO_CHARS = 200  # how much of a caller's input an error message may quote


class FsdError(Exception):
    """Base of all fsd errors. `code` is the name of a grpc.StatusCode member (kept as text: only serving/, the
    wire package and the client import grpc); `field` names the offending request field, row or rule."""

    code = "UNKNOWN"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidArgument(FsdError):
    code = "INVALID_ARGUMENT"


class NotFound(FsdError):
    code = "NOT_FOUND"


class FailedPrecondition(FsdError):
    code = "FAILED_PRECONDITION"


class AlreadyExists(FsdError):
    code = "ALREADY_EXISTS"


class ResourceExhausted(FsdError):
    code = "RESOURCE_EXHAUSTED"


class Unauthenticated(FsdError):
    code = "UNAUTHENTICATED"


class PermissionDenied(FsdError):
    code = "PERMISSION_DENIED"


class DeadlineExceeded(FsdError):
    code = "DEADLINE_EXCEEDED"


class Cancelled(FsdError):
    code = "CANCELLED"


class Unavailable(FsdError):
    code = "UNAVAILABLE"


class Unimplemented(FsdError):
    code = "UNIMPLEMENTED"


class StorageError(FsdError):
    code = "INTERNAL"


_BY_CODE: dict[str, type[FsdError]] = {
    cls.code: cls
    for cls in (InvalidArgument, NotFound, FailedPrecondition, AlreadyExists, ResourceExhausted, Unauthenticated,
                PermissionDenied, DeadlineExceeded, Cancelled, Unavailable, Unimplemented, StorageError)
}


def error_for_code(code: str, message: str, field: str | None = None) -> FsdError:
    """The fsd error of a status code name (an unknown code gives the base class, keeping the code)."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(message, field=field)
    error = FsdError(message, field=field)
    error.code = code
    return error


def echo(text: object, limit: int = MAX_ECHO_CHARS) -> str:
    """A caller's input quoted in a message, cut to `limit` characters so a message never grows with the input."""
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[: limit - 1]}…(+{len(shown) - limit + 1} chars)"
