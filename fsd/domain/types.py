"""Value types shared by every part of fsd: dtypes, entity keys, group and feature specs, refs, the clock."""
from __future__ import annotations

import enum
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from fsd.errors import InvalidArgument

if TYPE_CHECKING:
    from fsd.domain.aggregation import Aggregation

MICROS_PER_SECOND = 1_000_000
PSI_THRESHOLD = 0.2  # population stability index above this: served values are skewed from training


class DType(enum.IntEnum):
    """Feature data types; values equal the wire enum `fsd.v1.DType` and the byte stored in each value."""

    INT64 = 1
    DOUBLE = 2
    FLOAT = 3
    BOOL = 4
    STRING = 5
    BYTES = 6
    FLOAT_VECTOR = 7


DTYPE_NAMES: dict[str, DType] = {
    "int64": DType.INT64,
    "double": DType.DOUBLE,
    "float64": DType.DOUBLE,
    "float": DType.FLOAT,
    "float32": DType.FLOAT,
    "bool": DType.BOOL,
    "string": DType.STRING,
    "bytes": DType.BYTES,
    "float_vector": DType.FLOAT_VECTOR,
}


class KeyType(enum.IntEnum):
    """Entity-key column types; values equal the wire enum `fsd.v1.KeyType`."""

    INT64 = 1
    STRING = 2


KEY_TYPE_NAMES: dict[str, KeyType] = {"int64": KeyType.INT64, "string": KeyType.STRING}


class ValueStatus(enum.IntEnum):
    """Per-value serving status; values equal the wire enum `fsd.v1.ValueStatus`."""

    PRESENT = 1
    NOT_FOUND = 2
    STALE = 3
    BLOCKED = 4


class PublishMode(enum.IntEnum):
    """How a publish meets the values already online; the values equal the wire enum fsd.v1.PublishMode, where
    0 (unspecified) means REFRESH."""

    INITIAL = 1
    REFRESH = 2
    BACKFILL = 3
    CORRECTION = 4
    RESYNC = 5

    @classmethod
    def of(cls, value: int | str) -> PublishMode:
        """A mode from its wire number (0: REFRESH) or its name; InvalidArgument naming `mode` for anything else."""
        try:
            if isinstance(value, str):
                return cls[value]
            return cls.REFRESH if value == 0 else cls(value)
        except (KeyError, ValueError):
            shown = value[:40] if isinstance(value, str) else value
            raise InvalidArgument(f"publish mode {shown!r} must be one of {', '.join(m.name for m in cls)}", field="mode") from None


class VersionState(enum.IntEnum):
    """Lifecycle of a feature version. Explicit values: they are stored."""

    PENDING = 1
    SERVING = 2
    DEPRECATED = 3
    RETIRED = 4


_NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def is_valid_name(name: str) -> bool:
    """Group, feature and key names: lower-case identifiers, so refs and paths stay unambiguous."""
    return isinstance(name, str) and _NAME_RE.fullmatch(name) is not None  # fullmatch: "name\n" is not a name


@dataclass(frozen=True, slots=True)
class EntityKeySpec:
    name: str
    type: KeyType


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """A feature as declared. Behaviour-relevant fields decide versions; the rest is metadata."""

    name: str
    dtype: DType
    nullable: bool = True
    vector_dim: int = 0
    description: str = ""
    transformation: str = ""
    window_seconds: int = 0
    source_dependencies: tuple[str, ...] = ()
    meaning: str = ""
    owner: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    max_age_seconds: int = 0  # 0: use the group's max age
    allow_nan: bool = False
    aggregation: Aggregation | None = None  # a computed feature: fsd computes it from the group's events


@dataclass(frozen=True, slots=True)
class FreshnessPolicy:
    """Per-group breach thresholds (0 = not checked). A breach marks the group stale and asks for a resync."""

    max_lag_seconds: int = 0  # now - newest online event time
    max_stale_ratio: float = 0.0  # share of sampled online values older than max age
    max_missed_refreshes: int = 0  # sync intervals elapsed without a successful sync
    min_consistency: float = 0.0  # validator: share of sampled values equal to the offline expectation
    on_inconsistency: str = "report"  # report | mark_stale | block | resync


@dataclass(frozen=True, slots=True)
class GroupSpec:
    name: str
    entity_keys: tuple[EntityKeySpec, ...]
    features: tuple[FeatureSpec, ...]
    source: str = ""
    owner: str = ""
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    max_age_seconds: int = 0  # 0: values never go stale
    sync_interval_seconds: int = 0
    policy: FreshnessPolicy = field(default_factory=lambda: FreshnessPolicy())
    timestamp_field: str = "event_timestamp"  # the event-time column of this group's input files (metadata)
    sync_adaptive: bool = False  # sync_interval: adaptive — the scheduler picks each next interval within the bounds
    sync_min_seconds: int = 0  # adaptive bounds (0: the defaults, 1 minute and 1 hour)
    sync_max_seconds: int = 0
    event_columns: tuple[tuple[str, DType], ...] = ()  # an event source: PushEvents takes these columns (computed features)
    allowed_lateness_seconds: int = 0  # how late (received - event time) an event may arrive and still count

    def feature(self, name: str) -> FeatureSpec | None:
        for spec in self.features:
            if spec.name == name:
                return spec
        return None


@dataclass(frozen=True, slots=True)
class FeatureRef:
    """`group:feature` or `group:feature@N` as written by a caller."""

    group: str
    feature: str
    version: int | None = None

    @staticmethod
    def parse(text: str) -> FeatureRef:
        from fsd.errors import InvalidArgument

        from fsd.errors import echo

        body, sep, version_text = text.partition("@")
        group, colon, feature = body.partition(":")
        if not colon or not group or not feature:
            raise InvalidArgument(f"feature reference {echo(text)} must look like 'group:feature' or 'group:feature@N'", field="features")
        version: int | None = None
        if sep:
            if not version_text.isascii() or not version_text.isdigit() or int(version_text) < 1 or len(version_text) > 9:
                raise InvalidArgument(f"feature reference {echo(text)}: version after '@' must be a positive integer", field="features")
            version = int(version_text)
        return FeatureRef(group, feature, version)

    def __str__(self) -> str:
        base = f"{self.group}:{self.feature}"
        return base if self.version is None else f"{base}@{self.version}"


@dataclass(frozen=True, slots=True)
class ResolvedFeature:
    """A feature version chosen for serving: everything the hot path needs, resolved once per registry revision."""

    group: str
    group_id: int
    feature: str
    version: int
    slot: int  # globally unique, never reused id of (group, feature, version): part of the online key
    dtype: DType
    vector_dim: int
    max_age_micros: int  # 0: never stale
    blocked: bool = False
    group_stale: bool = False  # a freshness policy breach marks every value of the group STALE


class Clock(Protocol):
    def now_micros(self) -> int: ...


@dataclass(slots=True)
class SystemClock:
    """Wall clock in UTC epoch microseconds."""

    def now_micros(self) -> int:
        return time.time_ns() // 1000


@dataclass(slots=True)
class FixedClock:
    """A clock tests move by hand."""

    micros: int = field(default=0)

    def now_micros(self) -> int:
        return self.micros

    def advance(self, seconds: float) -> None:
        self.micros += int(seconds * MICROS_PER_SECOND)
