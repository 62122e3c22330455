"""Records fsd's parts hand each other and the client returns: versions, groups, manifests, plans, history,
publish results, incidents, sync runs, monitor status and validation results. Frozen values, no wire types."""
from __future__ import annotations

from dataclasses import dataclass, field

from fsd.domain.types import PSI_THRESHOLD, FeatureSpec, GroupSpec, VersionState


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version of one feature: its definition, lifecycle state and the online slot its values live under."""

    slot: int
    version: int
    state: VersionState
    spec: FeatureSpec
    behaviour_hash: str
    created_micros: int
    first_published_micros: int | None = None
    retired_micros: int | None = None
    purged_micros: int | None = None
    group: str = ""
    pinned_by: tuple[str, ...] = ()  # "manifest@N" of the manifests pinning it (filled where asked for: history)

    @property
    def feature(self) -> str:
        return self.spec.name

    @property
    def ref(self) -> str:
        return f"{self.group}:{self.spec.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A feature group as the registry holds it: definition and every feature's versions, ascending."""

    group_id: int
    spec: GroupSpec
    versions: dict[str, tuple[VersionInfo, ...]]

    @property
    def name(self) -> str:
        return self.spec.name

    def serving_version(self, feature: str) -> VersionInfo | None:
        for info in self.versions.get(feature, ()):
            if info.state == VersionState.SERVING:
                return info
        return None


@dataclass(frozen=True, slots=True)
class PinnedFeature:
    group: str
    feature: str
    version: int
    behaviour_hash: str

    @property
    def ref(self) -> str:
        return f"{self.group}:{self.feature}@{self.version}"


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    """A named, versioned list of pinned feature versions: the serving contract of a trained model."""

    name: str
    version: int
    created_micros: int
    created_by: str
    description: str
    features: tuple[PinnedFeature, ...]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class Change:
    """One line of a plan: what apply does (or did) to a group or feature."""

    group: str
    feature: str  # "" for the group itself
    action: str   # create | unchanged | metadata_update | compatible_expansion | new_version
    version: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    revision: int
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at_micros: int
    revision: int
    group: str
    feature: str
    version: int
    action: str
    detail: str
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class History:
    entries: tuple[HistoryEntry, ...]
    versions: tuple[VersionInfo, ...]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Rows [row_start, row_end) of a publish or ingest refused by rule `rule`, with why."""

    row_start: int
    row_end: int  # exclusive
    field: str
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class PublishChunk:
    """One chunk of a publish stream as the publish path takes it (the first chunk names group, versions, mode)."""

    publish_id: str
    group: str
    sequence: int
    arrow_ipc: bytes
    feature_versions: dict[str, int]
    mode: int
    snapshot_id: str = ""


@dataclass(frozen=True, slots=True)
class PublishResult:
    publish_id: str
    group: str
    chunks_written: int
    chunks_skipped_duplicate: int
    rows_received: int
    rows_accepted: int
    rows_rejected: int
    values_written: int
    values_skipped_older: int
    rejections: tuple[Rejection, ...] = ()
    rejections_truncated: bool = False
    reason_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PublishStatus:
    """Where a publish stands: whether the daemon knows its id, and its last durable chunk (-1: none)."""

    publish_id: str
    known: bool
    last_durable_sequence: int
    group: str = ""


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    opened_micros: int
    group: str
    kind: str
    publish_id: str
    detail: str
    resolved_micros: int | None = None
    resolved_by: str = ""
    resolution: str = ""


@dataclass(frozen=True, slots=True)
class SyncRun:
    """One offline -> online sync of a group, successful or not (id 0 until recorded)."""

    group: str
    started_micros: int
    ended_micros: int
    outcome: str  # success | failed
    error: str = ""
    snapshot: str = ""
    rows_read: int = 0
    values_written: int = 0
    rows_rejected: int = 0
    reason_counts: dict[str, int] = field(default_factory=dict)
    watermark_micros: int = 0
    sync_delay_micros: int = 0
    forced: bool = False
    id: int = 0


@dataclass(frozen=True, slots=True)
class OfflineWrite:
    """The scope of one offline write, recorded in the registry's history."""

    group: str
    feature: str
    version: int
    kind: str  # ingest | backfill | correction
    min_event_micros: int
    max_event_micros: int
    rows: int
    snapshot_id: str
    actor: str = ""


@dataclass(frozen=True, slots=True)
class ResyncRequest:
    id: int
    group: str
    reason: str
    requested_micros: int


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: str
    created_micros: int
    registry_revision: int


@dataclass(frozen=True, slots=True)
class FeatureStatus:
    """Monitor view of one SERVING or PENDING feature version; None means not measured."""

    feature: str
    version: int
    state: str
    stale_entity_ratio: float | None
    sampled_values: int
    blocked: bool
    last_consistency: float | None
    psi: float | None


@dataclass(frozen=True, slots=True)
class GroupStatus:
    group: str
    sync_interval_seconds: int
    max_age_seconds: int
    stale: bool
    newest_event_micros: int = 0
    freshness_lag_seconds: float | None = None  # None: nothing online yet
    seconds_since_sync: float | None = None     # None: never synced
    missed_refreshes: int = 0
    sync_delay_seconds: float | None = None     # None: no successful sync yet
    breaches: tuple[str, ...] = ()
    features: tuple[FeatureStatus, ...] = ()
    alerts: tuple[str, ...] = ()    # red besides breaches: the default policy, never synced, blocked, failing validation
    warnings: tuple[str, ...] = ()  # amber

    @property
    def health(self) -> str:
        """"fail" (red: what `fsd status --check` fails on), "warn" (amber) or "ok"."""
        if self.stale or self.breaches or self.alerts:
            return "fail"
        return "warn" if self.warnings else "ok"


@dataclass(frozen=True, slots=True)
class StatusReport:
    now_micros: int
    groups: tuple[GroupStatus, ...]


@dataclass(frozen=True, slots=True)
class MismatchCounts:
    value_differs: int = 0
    version_differs: int = 0
    missing_online: int = 0
    stale: int = 0
    entity_key_drift: int = 0


@dataclass(frozen=True, slots=True)
class FeatureValidation:
    feature: str
    version: int
    sampled: int
    matching: int
    mismatches: MismatchCounts
    psi: float | None = None  # None: not computed, or no data on one side

    @property
    def consistency(self) -> float | None:
        """Share of sampled values equal to the offline truth; None when nothing was compared."""
        return self.matching / self.sampled if self.sampled else None

    @property
    def skewed(self) -> bool:
        return self.psi is not None and self.psi > PSI_THRESHOLD


@dataclass(frozen=True, slots=True)
class ValidationResult:
    group: str
    features: tuple[FeatureValidation, ...]
    actions_taken: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Deployment:
    """What a deployment is: the one offline store every part uses, its engines, and the fsd that serves it."""

    offline_root: str
    store_engine: str
    registry_kind: str
    fsd_version: str
    codec_native: bool
    proto_version: str = "fsd.v1"
    data_dir: str = ""


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    """One fsd replica of a shared registry, as it last reported itself."""

    id: str
    address: str
    epoch_confirmed: int
    heartbeat_micros: int
    started_micros: int
    leader: bool = False
