"""Bounded sampling of a group's online rows: a window from a random key, wrapping to the start of the range,
each row at most once. Monitoring never scans a whole group on any request path."""
from __future__ import annotations

import os
from collections.abc import Iterator

from fsd.online.base import OnlineStore


def sample_rows(store: OnlineStore, prefix: bytes, limit: int) -> Iterator[tuple[bytes, bytes]]:
    sample = getattr(store, "sample", None)
    if sample is not None:  # an engine without ordered ranges (Redis Cluster) samples its own way
        yield from sample(prefix, limit)
        return
    start = prefix + os.urandom(4)
    taken = 0
    for key, row in store.scan(prefix, limit=limit, start=start):
        taken += 1
        yield key, row
    if taken >= limit:
        return
    for key, row in store.scan(prefix, limit=limit - taken):
        if key >= start:
            return
        yield key, row
