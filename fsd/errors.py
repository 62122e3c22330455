"""The fsd error tree; each class knows its gRPC status code so one interceptor can translate them.

    FsdError
    ├── InvalidArgument      INVALID_ARGUMENT     bad request field, bad definition, bad chunk
    ├── NotFound             NOT_FOUND            unknown group, feature or version
    ├── FailedPrecondition   FAILED_PRECONDITION  the state does not allow it (refused change, retired version)
    ├── AlreadyExists        ALREADY_EXISTS
    ├── ResourceExhausted    RESOURCE_EXHAUSTED   request over a configured limit
    ├── Unavailable          UNAVAILABLE          store not open yet / shutting down
    └── StorageError         INTERNAL             the storage engine failed (details logged, not sent)
"""
from __future__ import annotations


class FsdError(Exception):
    """Base of all fsd errors. `code` is the name of a grpc.StatusCode member (kept as text: only serving/ imports grpc)."""

    code = "UNKNOWN"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


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


class Unavailable(FsdError):
    code = "UNAVAILABLE"


class StorageError(FsdError):
    code = "INTERNAL"
