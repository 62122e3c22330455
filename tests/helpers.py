"""Small builders shared by tests: timestamps and typed Arrow tables."""
from __future__ import annotations

import time

import pyarrow as pa

MICROS = 1_000_000


def now_micros() -> int:
    return time.time_ns() // 1000


def ts_column(micros: list[int | None]) -> pa.Array:
    return pa.array(micros, type=pa.timestamp("us", tz="UTC"))


def seconds_ago(seconds: float) -> int:
    return now_micros() - int(seconds * MICROS)


def wait_for(predicate, timeout: float = 20.0, step: float = 0.02):  # type: ignore[no-untyped-def]
    """Poll predicate until it returns something truthy (and return that); fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(step)


def all_types_table(ids: list[int], event_micros: list[int], **overrides: object) -> pa.Table:
    """Rows for the `all_types` group of tests/conftest.py; row i has distinct, checkable values."""
    n = len(ids)
    columns: dict[str, object] = {
        "entity_id": pa.array(ids, type=pa.int64()),
        "event_timestamp": ts_column(event_micros),
        "f_int": pa.array([i * 10 for i in ids], type=pa.int64()),
        "f_double": pa.array([i * 1.5 for i in ids], type=pa.float64()),
        "f_float": pa.array([i * 0.25 for i in ids], type=pa.float32()),
        "f_bool": pa.array([i % 2 == 0 for i in ids]),
        "f_string": pa.array([f"s{i}-é" for i in ids]),
        "f_bytes": pa.array([bytes([i % 256, 0, 255]) for i in ids], type=pa.binary()),
        "f_vec": pa.array([[float(i), -1.0, 0.5] for i in ids], type=pa.list_(pa.float32())),
        "f_required": pa.array(list(range(n)), type=pa.int64()),
    }
    columns.update(overrides)
    return pa.table(columns)


class StatusError:
    """The status a failed call ended with, whether it came through the fsd client (an fsd error) or a raw stub."""

    def __init__(self, code: object, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> object:
        return self._code

    def details(self) -> str:
        return self._details


def rpc_error(call) -> StatusError:  # type: ignore[no-untyped-def]
    import grpc
    import pytest

    from fsd.errors import FsdError

    try:
        call()
    except FsdError as exc:
        return StatusError(getattr(grpc.StatusCode, exc.code), exc.message)
    except grpc.RpcError as exc:
        return StatusError(exc.code(), exc.details())  # type: ignore[attr-defined]
    pytest.fail("the call succeeded; an error status was expected")


class _Raised:
    value: StatusError


class raises_status:  # noqa: N801 - used like pytest.raises
    """`with raises_status() as info:` — like pytest.raises for an error status from the client or a raw stub;
    info.value has code() and details()."""

    def __enter__(self) -> _Raised:
        self._raised = _Raised()
        return self._raised

    def __exit__(self, kind, exc, tb) -> bool:  # type: ignore[no-untyped-def]
        import grpc
        import pytest

        from fsd.errors import FsdError

        if exc is None:
            pytest.fail("the call succeeded; an error status was expected")
        if isinstance(exc, FsdError):
            self._raised.value = StatusError(getattr(grpc.StatusCode, exc.code), exc.message)
            return True
        if isinstance(exc, grpc.RpcError):
            self._raised.value = StatusError(exc.code(), exc.details())  # type: ignore[attr-defined]
            return True
        return False
