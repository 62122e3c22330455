"""The publish rules of the README table, one function per rule, named by its rule id. Each returns its
Decision (which values go on, and the reason code counted for the rest) or raises the refusal it stands for.

Both ways values reach online go through these: a Publish stream (fsd.publish.publisher) and the offline ->
online loader (fsd.sync.loader, which publishes through the same stream with the mode of what it carries).
The per-value ordering of value_refresh and backfill runs in bulk in the native row merge
(codec.merge_rows); `newer_wins` is its readable specification, checked against it by property tests.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

from fsd.domain import GroupInfo, GroupSpec, PublishMode, VersionInfo, VersionState
from fsd.errors import FailedPrecondition

if TYPE_CHECKING:  # the registry applies schema_expansion without loading pyarrow
    import pyarrow as pa


# Reason codes (stable: they appear in responses, sync runs, metrics and the README).
NEW_FEATURE_ACCEPTED = "NEW_FEATURE_ACCEPTED"            # new_feature
PENDING_VERSION_WRITE = "PENDING_VERSION_WRITE"          # definition_update
OLDER_THAN_ONLINE = "OLDER_THAN_ONLINE"                  # value_refresh
BACKFILL_NOT_NEWEST = "BACKFILL_NOT_NEWEST"              # backfill
CORRECTION_OUTSIDE_WINDOW = "CORRECTION_OUTSIDE_WINDOW"  # late_correction: older than max age
CORRECTION_OLDER_THAN_ONLINE = "CORRECTION_OLDER_THAN_ONLINE"  # late_correction: online holds a later (event, created)
ENTITY_KEY_MISMATCH = "ENTITY_KEY_MISMATCH"              # entity_key_mismatch
ROW_REJECTED = "ROW_REJECTED"                            # timestamp_validity and the value rules
RESYNC_REPLACED = "RESYNC_REPLACED"                      # forced_resync
RESYNC_OUTSIDE_WINDOW = "RESYNC_OUTSIDE_WINDOW"          # forced_resync

RULE_IDS = (
    "new_feature", "definition_update", "value_refresh", "backfill", "schema_expansion", "breaking_change",
    "entity_key_mismatch", "late_correction", "timestamp_validity", "forced_resync",
)


@dataclass(frozen=True, slots=True)
class Decision:
    """A rule's verdict on what was offered: `keep` masks the values that go on (None: all of them); `reason`
    is counted `count` times (for values skipped, or accepted under a notable rule); `detail` explains."""

    rule: str
    reason: str | None = None
    count: int = 0
    keep: np.ndarray | None = None
    detail: str = ""


def new_feature(target: VersionInfo, offered: int) -> Decision:
    """Values of a version with no online data yet are accepted (after schema and type validation)."""
    if target.first_published_micros is None and offered:
        return Decision("new_feature", NEW_FEATURE_ACCEPTED, offered)
    return Decision("new_feature")


def definition_update(target: VersionInfo, offered: int) -> Decision:
    """A PENDING version is written under its own version; served only when pinned, until promoted."""
    if target.state == VersionState.PENDING and offered:
        return Decision("definition_update", PENDING_VERSION_WRITE, offered)
    return Decision("definition_update")


def newer_wins(offered: tuple[int, int], online: tuple[int, int] | None) -> bool:
    """value_refresh and backfill, per value: an offered (event time, created time) replaces the online one
    unless the online one is greater; for equal event times the later-created value wins; exact ties: offered."""
    return online is None or not online > offered


def value_refresh(skipped: int) -> Decision:
    """Only the latest value per entity is kept online; older event times are skipped (counted, not errors)."""
    return Decision("value_refresh", OLDER_THAN_ONLINE if skipped else None, skipped)


def backfill(skipped: int) -> Decision:
    """Historical rows change online only where they are the newest for the entity."""
    return Decision("backfill", BACKFILL_NOT_NEWEST if skipped else None, skipped)


def skipped_as_older(mode: PublishMode, skipped: int) -> Decision:
    """The rule, by publish mode, under which the row merge's skipped (not newest) values count."""
    if mode == PublishMode.BACKFILL:
        return backfill(skipped)
    if mode == PublishMode.CORRECTION:
        return Decision("late_correction", CORRECTION_OLDER_THAN_ONLINE if skipped else None, skipped)
    return value_refresh(skipped)


def late_correction(mode: PublishMode, event_times: np.ndarray, now_micros: int, max_age_micros: int) -> Decision:
    """A correction goes online only inside the serving window (not older than max age) and only where it is the
    current value's event time or newer (the merge decides that); outside the window it stays offline only."""
    if mode != PublishMode.CORRECTION or not max_age_micros:
        return Decision("late_correction")
    outside = now_micros - event_times > max_age_micros
    count = int(outside.sum())
    return Decision("late_correction", CORRECTION_OUTSIDE_WINDOW if count else None, count, ~outside)


def forced_resync(mode: PublishMode, event_times: np.ndarray, now_micros: int, max_age_micros: int) -> Decision:
    """A forced resync is an authoritative correction for the serving window: the offline truth replaces the online
    value whatever its event time (repairing values written straight online), for values not older than max age;
    older ones stay as they are."""
    if mode != PublishMode.RESYNC:
        return Decision("forced_resync")
    outside = (now_micros - event_times > max_age_micros) if max_age_micros else np.zeros(len(event_times), dtype=np.bool_)
    count = int(outside.sum())
    return Decision("forced_resync", RESYNC_OUTSIDE_WINDOW if count else None, count, ~outside)


def replaces_online(mode: PublishMode) -> bool:
    """Whether the row merge replaces online values regardless of their (event, created) order."""
    return mode == PublishMode.RESYNC


def entity_key_mismatch(schema: pa.Schema, group: GroupSpec) -> Decision:
    """Key columns that differ in name, type or composite order block the publish and open a review incident."""
    from fsd.rows import checks

    mismatch = checks.entity_key_mismatch(schema, group)
    if mismatch is None:
        return Decision("entity_key_mismatch")
    return Decision("entity_key_mismatch", ENTITY_KEY_MISMATCH, 0, None, mismatch)


def breaking_change(table: pa.Table, info: GroupInfo, targets: dict[str, VersionInfo]) -> Decision:
    """A column whose type or shape does not fit the version it writes is refused whole (InvalidArgument), with
    a pointer to versions: a type change is a new version, never an overwrite."""
    from fsd.rows import checks

    checks.check_feature_types(table, info.spec, {n: (t.version, t.spec) for n, t in targets.items()})
    return Decision("breaking_change")


def timestamp_validity(valid: np.ndarray) -> Decision:
    """Rows with a null, pre-epoch or future (beyond the skew tolerance) event or created time, or breaking a value
    rule, are rejected per row with their rule id and never written; the rest go on."""
    rejected = int((~valid).sum())
    return Decision("timestamp_validity", ROW_REJECTED if rejected else None, rejected, valid)


def schema_expansion(group: str, feature: str, nullable: bool) -> Decision:
    """A feature added to an existing group must be nullable: entities without a value read NOT_FOUND/null."""
    if not nullable:
        raise FailedPrecondition(
            f"group {group}: new feature {feature!r} is non-nullable; existing entities have no value for it. "
            "Declare it nullable (a compatible expansion) or declare a new group",
            field="features",
        )
    return Decision("schema_expansion")
