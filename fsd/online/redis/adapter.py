"""The Redis Cluster online engine: the OnlineStore protocol over a cluster that many stateless fsd replicas share.

Layout: one Redis string per (group, entity) row, holding the same row bytes as the embedded engine (every
feature version's value with its event and created time), keyed `\\x01{<entity>}<group id>` — hash-tagged on the
entity, so one entity's groups live on one shard and a group spreads over all of them. Other keys (publish
progress markers) are `\\x00<key>`.

Reads compute each key's slot locally, group keys by master and send one pipeline per master, all of them before
reading any reply (the shards work in parallel). Writes run a Lua compare-and-set per row on the server
(`MERGE_SCRIPT`): each offered value is kept only where its (event, created) time is not older than the stored
one — no read-then-write from Python, so concurrent writers through different replicas never let an older value
win. A write is acknowledged only after every master's pipeline succeeded (with `appendfsync always` on the
masters) and `WAIT` saw `min_replicas_ack` replicas. MOVED and ASK are followed (a MOVED refreshes the slot map);
a shard that cannot be reached makes the call fail with Unavailable, never a wrong or silently missing value.

Why a cluster client of its own rather than redis-py's RedisCluster: redis-py (8.1) refuses EVALSHA and MGET in a
cluster pipeline, and FCALL/EVALSHA through execute_command first ask COMMAND GETKEYS (an extra round trip per
call: 100 calls took 24.5 ms instead of 2.6 ms). Computing slots locally (redis.crc.key_slot), grouping keys by
master and sending one plain pipeline per master is what makes a 100-entity read one round trip per shard; the
price is that MOVED/ASK handling is ours (below). The scripts are merge.lua and remove.lua over rows.lua.

What readers can observe: one row is changed atomically, but a chunk touching several shards is not one
transaction — during a chunk a reader may see some of its rows new and others old; a publish's progress marker
is written only after all of its rows, so a resumed or retried chunk re-applies them (harmless: the merge is a
compare-and-set). Redis replication is asynchronous: a master that fails right after acknowledging can lose
writes its replicas had not received (`WAIT` narrows the window, it does not close it; see the README).
"""
from __future__ import annotations

import hashlib
import logging
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.connection import Connection, SSLConnection
from redis.crc import key_slot
from redis.exceptions import AskError, ClusterDownError, MasterDownError, MovedError, NoScriptError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fsd import codec
from fsd.errors import DeadlineExceeded, FailedPrecondition, StorageError, Unavailable
from fsd.online.base import seconds_left

logger = logging.getLogger(__name__)


def _lua(name: str) -> str:
    return (Path(__file__).with_name(name)).read_text(encoding="utf-8")


SLOTS = 16384

# The server-side scripts (rows.lua is the row library both start with), loaded once from the package.
_ROW_LIB = _lua("rows.lua")
REMOVE_SCRIPT = _ROW_LIB + _lua("remove.lua")
MERGE_SCRIPT = "#!lua flags=allow-cross-slot-keys\n" + _ROW_LIB + _lua("merge.lua")

MERGE_BATCH_KEYS = 500  # rows per script call: bounds how long one call holds its master
MERGE_SHA = hashlib.sha1(MERGE_SCRIPT.encode()).hexdigest()
REMOVE_SHA = hashlib.sha1(REMOVE_SCRIPT.encode()).hexdigest()


def redis_key(key: bytes) -> bytes:
    """fsd key -> Redis key: `{tag}` + the fsd key, the tag being the codec's opaque shard tag (16 hex characters,
    never a brace), so Redis places a key by its tag alone and one entity's rows share a slot."""
    return b"{" + codec.shard_tag(key) + b"}" + key


_TAGGED = codec.SHARD_TAG_CHARS + 2


def fsd_key(rkey: bytes) -> bytes:
    return rkey[_TAGGED:]


def _glob_escape(raw: bytes) -> bytes:
    out = bytearray()
    for b in raw:
        if b in b"*?[]\\":
            out.append(0x5C)
        out.append(b)
    return bytes(out)


def _patterns(prefix: bytes) -> list[bytes]:
    """SCAN MATCH patterns covering the Redis keys whose fsd keys start with prefix (callers filter exactly)."""
    return [b"{" + b"?" * codec.SHARD_TAG_CHARS + b"}" + _glob_escape(prefix) + b"*"]


# --- the key layout, and the one before it -------------------------------------------------------------------
# fsd before this layout tagged a row key with its encoded entity (`\x01{<entity>}<group id>`, other keys `\x00<key>`):
# an entity whose bytes hold `}` (every 125-byte string key: its u16 length prefix is 0x7d) cut the tag short, and
# thousands of keys landed on one slot. A cluster holding that layout is refused at start until `fsd redis-migrate`
# has rewritten it (idempotent: safe to re-run after an interruption).
LAYOUT_KEY = b"{fsd}layout"
LAYOUT = b"2"


def legacy_fsd_key(rkey: bytes) -> bytes | None:
    """The fsd key of a key in the old layout, or None for a key that is not one."""
    if rkey[:2] == b"\x01{" and len(rkey) >= 7:
        return b"\x01" + rkey[-4:] + rkey[2:-5]
    if rkey[:1] == b"\x00":
        return rkey[1:]
    return None


@dataclass(frozen=True, slots=True)
class RedisSettings:
    nodes: tuple[tuple[str, int], ...]
    password: str = ""
    tls: bool = False
    min_replicas_ack: int = 1
    timeout_seconds: float = 2.0
    wait_timeout_ms: int = 1000


def parse_nodes(text: str) -> tuple[tuple[str, int], ...]:
    nodes = []
    for item in (p.strip() for p in text.split(",")):
        host, _, port = item.rpartition(":")
        if not item or not host or not port.isdigit():
            raise FailedPrecondition(f"store.redis_nodes: {item[:60]!r} is not host:port", field="store.redis_nodes")
        nodes.append((host, int(port)))
    return tuple(nodes)


class _Node:
    """One master: a small pool of connections (the daemon's RPC threads read concurrently)."""

    def __init__(self, address: tuple[str, int], settings: RedisSettings) -> None:
        self.address = address
        self._settings = settings
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def take(self, timeout: float) -> Connection:
        """A pooled connection, or a new one that connects within `timeout`; replies are awaited `timeout` too."""
        conn = None
        with self._lock:
            if self._idle:
                conn = self._idle.pop()
        if conn is None:
            cls = SSLConnection if self._settings.tls else Connection
            conn = cls(host=self.address[0], port=self.address[1], password=self._settings.password or None,
                       socket_timeout=self._settings.timeout_seconds, socket_connect_timeout=self._settings.timeout_seconds)
        conn.socket_timeout = conn.socket_connect_timeout = timeout
        if conn._sock is not None:  # noqa: SLF001 - an open connection takes the new timeout for its next reads
            conn._sock.settimeout(timeout)  # noqa: SLF001
        return conn

    def give(self, conn: Connection) -> None:
        with self._lock:
            if len(self._idle) < 16:
                self._idle.append(conn)
                return
        conn.disconnect()

    def close(self) -> None:
        with self._lock:
            for conn in self._idle:
                conn.disconnect()
            self._idle.clear()


class _Redirect(Exception):
    """A reply asked us to refresh the slot map and try again (MOVED, or a node that went away)."""


class RedisClusterOnlineStore:
    def __init__(self, settings: RedisSettings, check_layout: bool = True) -> None:
        self._settings = settings
        self._nodes: dict[tuple[str, int], _Node] = {}
        self._slot_owner: list[tuple[str, int] | None] = [None] * SLOTS
        self._topology_lock = threading.Lock()
        self.refresh_topology()
        if check_layout:
            self._check_layout()

    # --- key layout ---------------------------------------------------------------------------------------

    def _check_layout(self) -> None:
        """A cluster marked with this layout is served; one holding keys of the old layout is refused with what to
        do; any other (empty, or holding only other applications' keys) is marked. A marker shard that cannot be
        reached is not a reason to refuse to start (this is an upgrade guard, not a consistency mechanism)."""
        try:
            owner = self._owner(LAYOUT_KEY)
            if self._pipeline(owner, [("GET", LAYOUT_KEY)])[0] == LAYOUT:
                return
            old = self._first_legacy_key()
        except Unavailable as exc:
            logger.warning("could not check the Redis key layout (%s); assuming it is current", exc.message)
            return
        if old is not None:
            raise FailedPrecondition(
                "this Redis Cluster holds fsd keys in the layout before online keys were tagged by the codec's shard tag "
                "(entity hash tags could collapse onto one slot); rewrite them once with `fsd redis-migrate --redis-nodes "
                "HOST:PORT,...` (idempotent, safe to re-run), or empty the cluster and re-sync from the offline store",
                field="store.redis_nodes",
            )
        self._pipeline(owner, [("SET", LAYOUT_KEY, LAYOUT)])

    def _first_legacy_key(self) -> bytes | None:
        """Any key of the old layout on any master (a scan that stops at the first; run once, before marking)."""
        for address in self.masters():
            for pattern in (b"\x01{*", b"\x00*"):
                for batch in self._scan_pages(address, pattern):
                    found = next((k for k in batch if legacy_fsd_key(k) is not None), None)
                    if found is not None:
                        return found
        return None

    def migrate_layout(self) -> int:
        """Rewrite every key of the old layout into this one (value copied, then the old key deleted, durably), then
        mark the cluster; returns the keys moved. Stop the replicas first: a key is briefly in both layouts."""
        moved = 0
        for address in self.masters():
            for batch in self._scan_pages(address):
                pairs = [(rkey, key) for rkey in batch if (key := legacy_fsd_key(rkey)) is not None]
                if pairs:
                    values = self._pipeline(address, [("GET", rkey) for rkey, _ in pairs])
                    self.write_batch([(key, value) for (_, key), value in zip(pairs, values) if isinstance(value, bytes)])
                    self._pipeline(address, [("DEL", rkey) for rkey, _ in pairs])
                    moved += len(pairs)
        self._pipeline(self._owner(LAYOUT_KEY), [("SET", LAYOUT_KEY, LAYOUT)])
        return moved

    # --- topology -----------------------------------------------------------------------------------------

    def refresh_topology(self) -> None:
        """Read the slot map from any reachable node (seeds first, then known masters) and load the scripts."""
        candidates = list(self._settings.nodes) + [a for a in self._nodes if a not in self._settings.nodes]
        last: Exception | None = None
        for host, port in candidates:
            try:
                budget = self._budget()  # within the caller's deadline when a request triggered the refresh
                client = redis.Redis(host=host, port=port, password=self._settings.password or None, ssl=self._settings.tls,
                                     socket_timeout=budget, socket_connect_timeout=budget)
                slots = client.execute_command("CLUSTER", "SLOTS")
                client.close()
            except (RedisConnectionError, RedisTimeoutError, ResponseError) as exc:
                last = exc
                continue
            owner: list[tuple[str, int] | None] = [None] * SLOTS
            for start, end, master, *_ in slots:
                address = ((master[0].decode() if isinstance(master[0], bytes) else master[0]) or host, int(master[1]))
                for s in range(int(start), int(end) + 1):
                    owner[s] = address
            with self._topology_lock:
                for address in set(a for a in owner if a):
                    if address not in self._nodes:
                        self._nodes[address] = _Node(address, self._settings)
                self._slot_owner = owner
            self._load_scripts()
            return
        raise Unavailable(f"no Redis Cluster node reachable at {', '.join(f'{h}:{p}' for h, p in candidates)} ({last})")

    def _load_scripts(self) -> None:
        for address in set(a for a in self._slot_owner if a):
            try:
                self._pipeline(address, [("SCRIPT", "LOAD", MERGE_SCRIPT), ("SCRIPT", "LOAD", REMOVE_SCRIPT)])
            except Unavailable:
                logger.warning("could not load scripts on %s:%d (down?)", *address)

    def masters(self) -> list[tuple[str, int]]:
        return sorted(set(a for a in self._slot_owner if a))

    def _owner(self, rkey: bytes) -> tuple[str, int]:
        owner = self._slot_owner[key_slot(rkey)]
        if owner is None:
            raise Unavailable("the Redis Cluster has no master for a slot this request needs (cluster down?)")
        return owner

    # --- pipelines ----------------------------------------------------------------------------------------

    def _pipeline(self, address: tuple[str, int], commands: Sequence[tuple[object, ...]]) -> list[object]:
        return self._pipelines({address: list(commands)})[address]

    def _pipelines(self, per_node: dict[tuple[str, int], list[tuple[object, ...]]]) -> dict[tuple[str, int], list[object]]:
        """Send every node's commands, then read every reply: the shards work in parallel. Replies are values or
        ResponseError instances; a node that fails makes the whole call Unavailable."""
        taken: dict[tuple[str, int], Connection] = {}
        out: dict[tuple[str, int], list[object]] = {}
        timeout = self._budget()
        try:
            for address, commands in per_node.items():
                node = self._nodes.get(address) or self._nodes.setdefault(address, _Node(address, self._settings))
                conn = node.take(timeout)
                taken[address] = conn
                conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            for address, commands in per_node.items():
                conn = taken[address]
                replies: list[object] = []
                for _ in commands:
                    try:
                        replies.append(conn.read_response(disable_decoding=True))
                    except ResponseError as exc:
                        replies.append(exc)
                out[address] = replies
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            for conn in taken.values():
                conn.disconnect()
            taken.clear()
            raise Unavailable(f"online store shard unreachable ({str(exc)[:160]}); the request was not served") from None
        finally:
            for address, conn in taken.items():
                self._nodes[address].give(conn)
        return out

    def _budget(self) -> float:
        """Seconds one round trip may wait: redis_timeout_seconds, or less when the caller's deadline is nearer —
        four fifths of what is left, so a shard that does not answer is reported UNAVAILABLE while the caller still
        listens, not after its deadline passed."""
        left = seconds_left()
        if left is None:
            return self._settings.timeout_seconds
        if left <= 0.001:
            raise DeadlineExceeded("the call's deadline passed before the online store answered")
        return max(0.001, min(self._settings.timeout_seconds, left * 0.8))

    def _run_per_key(self, rkeys: Sequence[bytes], command_of: callable, durable: bool = False) -> list[object]:  # type: ignore[valid-type]
        """One command per key, grouped by owning master; MOVED refreshes the slot map and retries, ASK redirects.
        With durable, each master's pipeline ends with WAIT on the same connection (WAIT counts the replicas that
        have this client's writes), and fewer than min_replicas_ack replicas fails the call."""
        wait = durable and self._settings.min_replicas_ack > 0
        for attempt in range(3):
            per_node: dict[tuple[str, int], list[tuple[object, ...]]] = {}
            positions: dict[tuple[str, int], list[int]] = {}
            for i, rkey in enumerate(rkeys):
                owner = self._owner(rkey)
                per_node.setdefault(owner, []).append(command_of(i, rkey))
                positions.setdefault(owner, []).append(i)
            if wait:
                for commands in per_node.values():
                    commands.append(("WAIT", self._settings.min_replicas_ack, self._settings.wait_timeout_ms))
            try:
                replies = self._pipelines(per_node)
            except Unavailable:
                if attempt == 2 or self._deadline_near():
                    raise
                self._refresh_quietly()
                continue
            results: list[object] = [None] * len(rkeys)
            moved = False
            for address, node_replies in replies.items():
                if wait:
                    self._check_wait(address, node_replies.pop())
                for i, reply in zip(positions[address], node_replies):
                    if isinstance(reply, MovedError):
                        moved = True
                    elif isinstance(reply, AskError):
                        results[i] = self._ask(reply, command_of(i, rkeys[i]))
                    elif isinstance(reply, NoScriptError):
                        self._load_scripts()
                        moved = True
                    elif isinstance(reply, (ClusterDownError, TryAgainError, MasterDownError)):
                        raise Unavailable(f"Redis Cluster: {type(reply).__name__}: {str(reply)[:120]}")
                    elif isinstance(reply, ResponseError):
                        raise StorageError(f"Redis Cluster: {str(reply)[:200]}")
                    else:
                        results[i] = reply
            if not moved:
                return results
            self._refresh_quietly()
        raise Unavailable("the Redis Cluster slot map kept changing during the request; retry")

    def _deadline_near(self) -> bool:
        """No time for a slot-map refresh and another try within the caller's deadline."""
        left = seconds_left()
        return left is not None and left < 2 * self._budget()

    def _ask(self, error: AskError, command: tuple[object, ...]) -> object:
        address = (error.host, int(error.port))
        replies = self._pipeline(address, [("ASKING",), command])
        if isinstance(replies[1], ResponseError):
            raise Unavailable(f"Redis Cluster: {str(replies[1])[:120]}")
        return replies[1]

    def _refresh_quietly(self) -> None:
        try:
            self.refresh_topology()
        except Unavailable as exc:
            logger.warning("slot map refresh failed: %s", exc.message)

    def _check_wait(self, address: tuple[str, int], acked: object) -> None:
        need = self._settings.min_replicas_ack
        if isinstance(acked, ResponseError) or int(acked) < need:  # type: ignore[arg-type]
            raise Unavailable(f"only {acked} of {need} replica(s) of {address[0]}:{address[1]} acknowledged within "
                              f"{self._settings.wait_timeout_ms} ms; the write is not acknowledged (retry)")

    # --- OnlineStore ---------------------------------------------------------------------------------------

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        rkeys = [redis_key(k) for k in keys]
        return self._run_per_key(rkeys, lambda i, rk: ("GET", rk))  # type: ignore[return-value]

    def write_batch(self, puts: Sequence[tuple[bytes, bytes]], deletes: Sequence[bytes] = ()) -> None:
        """Puts and deletes, durable on every shard they touch (not one transaction across shards)."""
        ops = [("SET", redis_key(k), v) for k, v in puts] + [("DEL", redis_key(k)) for k in deletes]
        if not ops:
            return
        self._run_per_key([op[1] for op in ops], lambda i, rk: ops[i], durable=True)  # type: ignore[index]

    def merge_rows(self, keys: Sequence[bytes], slots: Sequence[int], columns: Sequence[Sequence[bytes | None]], replace: bool = False,
                   extra_puts: Sequence[tuple[bytes, bytes]] = ()) -> tuple[int, int]:
        # The offered values of each row as one row blob (the codec's own row format, built natively).
        offered, _, _ = codec.merge_rows([None] * len(keys), slots, columns)
        pairs = [(redis_key(k), blob) for k, blob in zip(keys, offered) if blob is not None]
        written = skipped = 0
        if pairs:
            try:
                written, skipped = self._merge_batched(pairs, replace)
            except _Redirect:  # the slot map moved under the batch: per row, with MOVED/ASK handling (re-applying is harmless)
                written = skipped = 0
                for reply in self._run_per_key([rk for rk, _ in pairs], lambda i, rk: ("EVALSHA", MERGE_SHA, 0, 1 if replace else 0, 1, rk, pairs[i][1]),
                                               durable=True):
                    written += int(reply[0])  # type: ignore[index]
                    skipped += int(reply[1])  # type: ignore[index]
        if extra_puts:  # after every row is durable: a marker never claims a chunk whose rows are not all written
            self.write_batch(extra_puts)
        return written, skipped

    def _merge_batched(self, pairs: list[tuple[bytes, bytes]], replace: bool) -> tuple[int, int]:
        """One script call per MERGE_BATCH_KEYS rows of a master, every master's pipeline sent at once, WAIT last."""
        per_node: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        for rkey, blob in pairs:
            per_node.setdefault(self._owner(rkey), []).append((rkey, blob))
        commands: dict[tuple[str, int], list[tuple[object, ...]]] = {}
        for address, items in per_node.items():
            batch_commands = []
            for start in range(0, len(items), MERGE_BATCH_KEYS):
                batch = items[start:start + MERGE_BATCH_KEYS]
                batch_commands.append(("EVALSHA", MERGE_SHA, 0, 1 if replace else 0, len(batch), *(k for k, _ in batch), *(b for _, b in batch)))
            if self._settings.min_replicas_ack > 0:
                batch_commands.append(("WAIT", self._settings.min_replicas_ack, self._settings.wait_timeout_ms))
            commands[address] = batch_commands
        try:
            replies = self._pipelines(commands)
        except Unavailable:
            self._refresh_quietly()
            raise _Redirect() from None
        written = skipped = 0
        for address, node_replies in replies.items():
            if self._settings.min_replicas_ack > 0:
                self._check_wait(address, node_replies.pop())
            for reply in node_replies:
                if isinstance(reply, (MovedError, NoScriptError)) or (isinstance(reply, ResponseError) and "non local key" in str(reply)):
                    if isinstance(reply, NoScriptError):
                        self._load_scripts()
                    else:
                        self._refresh_quietly()
                    raise _Redirect()
                if isinstance(reply, (ClusterDownError, TryAgainError, MasterDownError)):
                    raise Unavailable(f"Redis Cluster: {type(reply).__name__}: {str(reply)[:120]}")
                if isinstance(reply, ResponseError):
                    raise StorageError(f"Redis Cluster: {str(reply)[:200]}")
                written += int(reply[0])  # type: ignore[index]
                skipped += int(reply[1])  # type: ignore[index]
        return written, skipped

    def _scan_pages(self, address: tuple[str, int], pattern: bytes | None = None) -> Iterator[list[bytes]]:
        """The Redis keys of one master (matching `pattern`), a SCAN page at a time. A master that went away makes
        it Unavailable after a slot-map refresh, so the next scan lists its successor."""
        match = ("MATCH", pattern) if pattern is not None else ()
        cursor: object = b"0"
        while True:
            try:
                reply = self._pipeline(address, [("SCAN", cursor, *match, "COUNT", 1000)])[0]
            except Unavailable:
                self._refresh_quietly()
                raise
            if isinstance(reply, ResponseError):
                raise Unavailable(f"Redis Cluster SCAN: {str(reply)[:120]}")
            cursor, batch = reply  # type: ignore[misc]
            yield batch
            if cursor in (b"0", 0, "0"):
                return

    def _scan_keys(self, prefix: bytes, stop_after: int | None = None, random_start: bool = False) -> Iterator[bytes]:
        """fsd keys under prefix from every master's SCAN (unordered)."""
        masters = self.masters()
        if random_start:
            random.shuffle(masters)
        found = 0
        for address, pattern in ((a, p) for a in masters for p in _patterns(prefix)):
            for batch in self._scan_pages(address, pattern):
                for rkey in batch:
                    key = fsd_key(rkey)
                    if key.startswith(prefix):
                        yield key
                        found += 1
                        if stop_after is not None and found >= stop_after:
                            return

    def scan(self, prefix: bytes, limit: int | None = None, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Key-ordered pairs under prefix: every matching key is listed (SCAN on each master) and sorted — a cost
        proportional to the prefix's size; background work and tests use it, never a request path."""
        keys = sorted(k for k in self._scan_keys(prefix) if start is None or k >= start)
        if limit is not None:
            keys = keys[:limit]
        for offset in range(0, len(keys), 1000):
            batch = keys[offset:offset + 1000]
            for key, value in zip(batch, self.get_many(batch)):
                if value is not None:
                    yield key, value

    def sample(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to `limit` rows under prefix, from masters in random order, without listing the whole prefix."""
        keys = list(self._scan_keys(prefix, stop_after=limit, random_start=True))
        return [(k, v) for k, v in zip(keys, self.get_many(keys)) if v is not None]

    def delete_prefix(self, prefix: bytes) -> None:
        batch: list[bytes] = []
        for key in self._scan_keys(prefix):
            batch.append(key)
            if len(batch) >= 1000:
                self.write_batch([], batch)
                batch = []
        if batch:
            self.write_batch([], batch)

    def purge_slot(self, prefix: bytes, slot: int, batch_rows: int = 5_000) -> int:
        """Remove one feature version from every row under prefix, a server-side script per row, in bounded batches."""
        rewritten = 0
        batch: list[bytes] = []

        def flush() -> int:
            rkeys = [redis_key(k) for k in batch]
            return sum(int(r) for r in self._run_per_key(rkeys, lambda i, rk: ("EVALSHA", REMOVE_SHA, 1, rk, slot), durable=True))  # type: ignore[arg-type]

        for key in self._scan_keys(prefix):
            batch.append(key)
            if len(batch) >= batch_rows:
                rewritten += flush()
                batch = []
        if batch:
            rewritten += flush()
        return rewritten

    def close(self) -> None:
        for node in self._nodes.values():
            node.close()
