"""The server-side row merge (fsd/online/redis/merge.lua and remove.lua over rows.lua) against its specification,
fsd.codec._rows_py: random stored rows and offered values, ties and out-of-order stamps, run in a real
redis-server, must leave exactly the rows and counts the pure-Python merge gives."""
from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd.codec import _rows_py
from fsd.codec._values_py import HEADER
from fsd.dev.cluster import free_port
from fsd.online.redis.adapter import MERGE_SCRIPT, REMOVE_SCRIPT

redis = pytest.importorskip("redis")


@pytest.fixture(scope="module")
def server() -> Iterator[object]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server (.ci/run installs it)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)
    yield client
    client.close()
    proc.kill()
    proc.wait()


def value(event: int, created: int, payload: bytes) -> bytes:
    return HEADER.pack(1, 2, 0, event, created) + payload


stamps = st.tuples(st.integers(0, 5), st.integers(0, 3), st.binary(max_size=6))  # few distinct times: many ties
entry_maps = st.dictionaries(st.integers(0, 4), stamps.map(lambda t: value(*t)), max_size=4)


@settings(max_examples=60)
@given(rows=st.lists(st.one_of(st.none(), entry_maps), min_size=1, max_size=6), data=st.data(), replace=st.booleans())
def test_the_lua_merge_equals_the_reference(server, rows, data, replace: bool) -> None:  # type: ignore[no-untyped-def]
    slots = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True))
    columns = [data.draw(st.lists(st.one_of(st.none(), stamps.map(lambda t: value(*t))), min_size=len(rows), max_size=len(rows)))
               for _ in slots]
    existing = [None if r is None else _rows_py.build_row(r) for r in rows]
    expected, written, skipped = _rows_py.merge_rows(existing, slots, columns, replace)
    offered, _, _ = _rows_py.merge_rows([None] * len(rows), slots, columns)
    server.flushall()
    keys = [f"row{i}".encode() for i in range(len(rows))]
    for key, row in zip(keys, existing):
        if row is not None:
            server.set(key, row)
    pairs = [(k, blob) for k, blob in zip(keys, offered) if blob is not None]
    got = server.eval(MERGE_SCRIPT, 0, 1 if replace else 0, len(pairs), *(k for k, _ in pairs), *(b for _, b in pairs)) if pairs else [0, 0]
    assert [int(got[0]), int(got[1])] == [written, skipped]
    for key, old, new in zip(keys, existing, expected):
        stored = server.get(key)
        assert _rows_py.parse_row(stored) == _rows_py.parse_row(new if new is not None else old)


@settings(max_examples=30)
@given(row=entry_maps.filter(bool), slot=st.integers(0, 4))
def test_the_lua_removal_equals_the_reference(server, row, slot: int) -> None:  # type: ignore[no-untyped-def]
    server.flushall()
    server.set(b"row", _rows_py.build_row(row))
    changed = server.eval(REMOVE_SCRIPT, 1, b"row", slot)
    expected = _rows_py.remove_slot(_rows_py.build_row(row), slot)
    assert int(changed) == (1 if slot in row else 0)
    assert server.get(b"row") == (expected if slot in row else _rows_py.build_row(row))
