"""Where computed features live online, and which versions have tiles: shared by the push path (the writer), the
read path and retention, so the key layout is written once.

    tile blob:        0x03 | group id (u32 BE) | entity   (the row key's layout with another first byte)
    progress marker:  0x04 | group id (u32 BE)

Both lie outside a group's row range (0x01 | group id), so row scans, samples and slot purges never meet them;
deleting a group removes both ranges.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fsd.domain import GroupInfo, VersionState
from fsd.domain.aggregation import Aggregation

TILE_FORMAT = 0x03
TILE_MARKER_FORMAT = 0x04


def tile_prefix(group_id: int) -> bytes:
    return bytes([TILE_FORMAT]) + int(group_id).to_bytes(4, "big")


def tile_keys(group_id: int, entities: Sequence[bytes]) -> list[bytes]:
    prefix = tile_prefix(group_id)
    return [prefix + entity for entity in entities]


def tile_key_of_row(row_key: bytes) -> bytes:
    """The tile blob key of the entity whose row key this is."""
    return bytes([TILE_FORMAT]) + row_key[1:]


def marker_key(group_id: int) -> bytes:
    return bytes([TILE_MARKER_FORMAT]) + int(group_id).to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class ComputedVersion:
    slot: int
    feature: str
    version: int
    aggregation: Aggregation
    max_age_micros: int
    state: VersionState


def computed_versions(info: GroupInfo) -> list[ComputedVersion]:
    """The group's computed feature versions that tiles are kept for (PENDING ones too: they fill before promotion)."""
    found = []
    for feature, versions in sorted(info.versions.items()):
        for v in versions:
            if v.spec.aggregation is not None and v.state in (VersionState.PENDING, VersionState.SERVING, VersionState.DEPRECATED):
                max_age = (v.spec.max_age_seconds or info.spec.max_age_seconds) * 1_000_000
                found.append(ComputedVersion(v.slot, feature, v.version, v.spec.aggregation, max_age, v.state))
    return found


__all__ = ["ComputedVersion", "TILE_FORMAT", "TILE_MARKER_FORMAT", "computed_versions", "marker_key", "tile_key_of_row", "tile_keys", "tile_prefix"]
