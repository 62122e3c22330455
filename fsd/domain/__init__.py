"""fsd's domain layer: value types, the records its parts exchange, the registry snapshot and reference resolution.
No storage, no wire types, no grpc: everything here can be imported by every other part."""
from __future__ import annotations

from fsd.domain.records import (
    ApplyResult, BackupInfo, Change, Deployment, FeatureStatus, FeatureValidation, GroupInfo, GroupStatus, History, HistoryEntry,
    Incident, ManifestInfo, MismatchCounts, OfflineWrite, PinnedFeature, PublishChunk, PublishResult, PublishStatus, Rejection,
    ReplicaInfo, ResyncRequest, StatusReport, SyncRun, ValidationResult, VersionInfo,
)
from fsd.domain.online import FeatureValues, GetRequest, OnlineFeatures
from fsd.domain.resolution import ANY_STATE, READABLE, WRITABLE, column_name, find_manifest, manifest_refs, resolve_ref, resolve_version
from fsd.domain.snapshot import RegistrySnapshot
from fsd.domain.types import (
    DTYPE_NAMES, KEY_TYPE_NAMES, MICROS_PER_SECOND, PSI_THRESHOLD, Clock, DType, EntityKeySpec, FeatureRef, FeatureSpec,
    FixedClock, FreshnessPolicy, GroupSpec, KeyType, PublishMode, ResolvedFeature, SystemClock, ValueStatus, VersionState, is_valid_name,
)

__all__ = [
    "ANY_STATE", "ApplyResult", "BackupInfo", "Change", "Deployment", "Clock", "DTYPE_NAMES", "DType", "EntityKeySpec", "FeatureRef",
    "FeatureSpec", "FeatureStatus", "FeatureValues", "GetRequest", "OnlineFeatures", "FeatureValidation", "FixedClock", "FreshnessPolicy", "GroupInfo", "GroupSpec",
    "GroupStatus", "History", "HistoryEntry", "Incident", "KEY_TYPE_NAMES", "KeyType", "MICROS_PER_SECOND", "ManifestInfo",
    "MismatchCounts", "OfflineWrite", "PSI_THRESHOLD", "PinnedFeature", "PublishChunk", "PublishMode", "PublishResult", "PublishStatus", "READABLE",
    "Rejection", "RegistrySnapshot", "ReplicaInfo", "ResolvedFeature", "ResyncRequest", "StatusReport", "SyncRun", "SystemClock",
    "ValidationResult", "ValueStatus", "VersionInfo", "VersionState", "WRITABLE", "find_manifest", "is_valid_name",
    "column_name", "manifest_refs", "resolve_ref", "resolve_version",
]
