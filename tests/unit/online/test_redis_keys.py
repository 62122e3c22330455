"""The Redis key layout: placed by the codec's shard tag alone, so adversarial entity bytes cannot collapse keys
onto one slot, one entity's rows of every group share a slot, and every fsd key survives the round trip."""
from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from fsd import codec
from fsd.online.redis.adapter import _patterns, fsd_key, legacy_fsd_key, redis_key


def _string_key(group_id: int, text: str) -> bytes:
    return codec.entity_keys(group_id, codec.encode_entities([[text]], [True]))[0]


def test_random_125_byte_string_keys_spread_over_the_slots() -> None:
    rng = random.Random(7)
    keys = [_string_key(rng.randrange(1, 50), "".join(rng.choices("abcdefghij}{", k=125))) for _ in range(3000)]
    assert all(len(codec.encode_entities([[k[8:].decode()]], [True])[0]) == 128 for k in keys[:3])
    slots = {key_slot(redis_key(k)) for k in keys}
    assert len(slots) >= 2000, len(slots)  # the old layout put all of these on 1 slot


def test_keys_starting_with_a_brace_spread_too() -> None:
    rng = random.Random(8)
    keys = [_string_key(3, "}" + "".join(rng.choices("xyz", k=30))) for _ in range(3000)]
    assert len({key_slot(redis_key(k)) for k in keys}) >= 2000


def test_one_entity_shares_a_slot_across_groups() -> None:
    entity = codec.encode_entities([["customer-42"], [7]], [True, False])[0]
    slots = {key_slot(redis_key(codec.entity_keys(g, [entity])[0])) for g in range(1, 40)}
    assert len(slots) == 1


@given(st.binary(max_size=300))
def test_every_key_round_trips_and_is_matched_by_its_prefix_pattern(key: bytes) -> None:
    rkey = redis_key(key)
    assert fsd_key(rkey) == key
    tag = rkey[1:rkey.index(b"}")]
    assert len(tag) == codec.SHARD_TAG_CHARS and b"{" not in tag and b"}" not in tag
    assert legacy_fsd_key(rkey) is None  # never mistaken for an old-layout key


def test_old_layout_keys_are_recognised() -> None:
    key = _string_key(5, "abc")
    old_row = b"\x01{" + key[5:] + b"}" + key[1:5]
    assert legacy_fsd_key(old_row) == key
    assert legacy_fsd_key(b"\x00marker") == b"marker"
    assert _patterns(b"\x01")[0].startswith(b"{????????????????}")
