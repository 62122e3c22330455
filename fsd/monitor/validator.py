"""Serving-consistency validation: sample entities, compare online value, version and event time with the
offline expectation (latest value as of now for that version). Computation only: what a low consistency does
(block, mark stale, resync) is fsd.monitor.actions' job."""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from fsd import codec
from fsd.domain import (
    Clock, DType, FeatureValidation, GroupInfo, KeyType, MismatchCounts, RegistrySnapshot, VersionInfo, VersionState,
)
from fsd.errors import FailedPrecondition, InvalidArgument, NotFound
from fsd.monitor.computed_check import check_computed
from fsd.monitor.sampling import sample_rows
from fsd.monitor.skew import ServedValues, psi
from fsd.offline.retrieval import FeatureVersion, latest_values
from fsd.offline.store import EVENT_TIMESTAMP, VALUE, OfflineStore
from fsd.online.base import OnlineStore


logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Tally:
    sampled: int = 0
    matching: int = 0
    mismatches: Counter[str] = field(default_factory=Counter)  # MismatchCounts field -> count
    psi: float | None = None

    def result(self, feature: str, version: int) -> FeatureValidation:
        return FeatureValidation(feature, version, self.sampled, self.matching, MismatchCounts(**self.mismatches), self.psi)


def _same(online: object, offline: object, dtype: DType) -> bool:
    if dtype == DType.FLOAT_VECTOR:
        return offline is not None and np.array_equal(np.asarray(online, dtype=np.float32), np.asarray(offline, dtype=np.float32))
    if dtype == DType.FLOAT:
        return offline is not None and np.float32(online) == np.float32(offline)  # type: ignore[arg-type]
    return online == offline


LastValidation = Callable[[int], "tuple[float | None, int, int] | None"]  # slot -> (consistency, sampled, at)


class ConsistencyValidator:
    def __init__(self, snapshots: Callable[[], RegistrySnapshot], store: OnlineStore, offline: OfflineStore, clock: Clock,
                 served: ServedValues, last_validation: LastValidation, min_promotion_consistency: float = 0.995) -> None:
        self._snapshots = snapshots
        self._store = store
        self._offline = offline
        self._clock = clock
        self._served = served
        self._last_validation = last_validation
        self._min_promotion = min_promotion_consistency

    def _entity_bytes(self, info: GroupInfo, table: pa.Table) -> list[bytes]:
        columns, is_string = [], []
        for key in info.spec.entity_keys:
            string = key.type == KeyType.STRING
            columns.append(table[key.name].to_pylist() if string else table[key.name].to_numpy(zero_copy_only=False).astype(np.int64))
            is_string.append(string)
        return codec.encode_entities(columns, is_string)

    def check_version(self, info: GroupInfo, feature: str, version: VersionInfo, sample: int, skew: bool) -> FeatureValidation:
        report = _Tally()
        if version.spec.aggregation is not None:  # computed: recomputed from the event log at this instant
            report.sampled, report.matching, report.mismatches = check_computed(
                self._store, str(self._offline.root), info, version, sample, self._clock.now_micros())
            return report.result(feature, version.version)
        keys = tuple(k.name for k in info.spec.entity_keys)
        now = self._clock.now_micros()
        expected = latest_values(self._offline, FeatureVersion(info.spec.name, feature, version.version, keys, 0), as_of_micros=now)
        offline_entities = self._entity_bytes(info, expected) if expected.num_rows else []
        if expected.num_rows:
            chosen = np.sort(np.random.default_rng().choice(expected.num_rows, size=min(sample, expected.num_rows), replace=False))
            subset = expected.take(pa.array(chosen))
            entities = [offline_entities[i] for i in chosen]
            rows = self._store.get_many(codec.entity_keys(info.group_id, entities))
            dtype = version.spec.dtype
            values, is_null, found, times = codec.decode_feature(rows, version.slot, int(dtype), version.spec.vector_dim)
            offline_values = subset[VALUE].to_pylist()
            offline_times = subset[EVENT_TIMESTAMP].cast(pa.int64()).to_numpy(zero_copy_only=False)
            for i in range(len(entities)):
                report.sampled += 1
                if not found[i]:
                    if version.slot in codec.parse_row(rows[i]):
                        report.mismatches["version_differs"] += 1  # bytes of another definition under this version's slot
                    else:
                        report.mismatches["missing_online"] += 1
                    continue
                if times[i] < offline_times[i]:
                    report.mismatches["stale"] += 1
                    continue
                online_value = None if is_null[i] else (values[i] if not isinstance(values, np.ndarray) else values[i].tolist())
                if times[i] == offline_times[i] and _same(online_value, offline_values[i], dtype) or (
                    times[i] == offline_times[i] and online_value is None and offline_values[i] is None
                ):
                    report.matching += 1
                else:
                    report.mismatches["value_differs"] += 1
            if skew and dtype in (DType.INT64, DType.DOUBLE, DType.FLOAT, DType.BOOL):
                report.psi = psi(np.asarray([v for v in expected[VALUE].to_pylist() if v is not None], dtype=np.float64),
                                 self._served.values(version.slot))
        # Entity-key drift: online entities holding this version that the offline store does not know.
        known = set(offline_entities)
        prefix = codec.group_prefix(info.group_id)
        for key, row in sample_rows(self._store, prefix, sample):
            if version.slot in codec.parse_row(row) and key[len(prefix):] not in known:
                report.mismatches["entity_key_drift"] += 1
        return report.result(feature, version.version)

    def targets(self, group: str, feature: str = "", versions: list[int] | None = None) -> tuple[GroupInfo, list[tuple[str, VersionInfo]]]:
        """The feature versions a validation of `group` covers: the named ones, else every SERVING and PENDING one.
        NotFound for an unknown group, feature or version."""
        snapshot = self._snapshots()
        info = snapshot.group(group)
        if feature and feature not in info.versions:
            raise NotFound(f"group {group!r} has no feature {feature!r}", field="feature")
        if feature and versions:
            return info, [(feature, snapshot.find_version(group, feature, v)[1]) for v in versions]
        chosen = []
        for name, all_versions in info.versions.items():
            if feature and name != feature:
                continue
            for version in all_versions:
                if version.version in versions if versions else version.state in (VersionState.SERVING, VersionState.PENDING):
                    chosen.append((name, version))
        return info, chosen

    def validate(self, group: str, *, sample: int = 1000, skew: bool = False, feature: str = "",
                 versions: list[int] | None = None) -> tuple[GroupInfo, list[tuple[VersionInfo, FeatureValidation]]]:
        """Compare each covered version's sampled online values with the offline truth; writes nothing."""
        if sample <= 0 or sample > 100_000:
            raise InvalidArgument("sample must be 1 to 100000", field="sample")
        info, chosen = self.targets(group, feature, versions)
        return info, [(version, self.check_version(info, name, version, sample, skew)) for name, version in chosen]

    def promotion_gate(self, info: GroupInfo, version: VersionInfo) -> None:
        """A PENDING version serves only after a validation that compared values and passed."""
        if self._min_promotion <= 0:
            return
        last = self._last_validation(version.slot)
        ref = f"{info.spec.name}:{version.spec.name}@{version.version}"
        if last is None or last[1] == 0 or last[0] is None:
            raise FailedPrecondition(
                f"{ref} was never validated against offline values; ingest its offline data "
                f"(fsd offline ingest {info.spec.name} FILE --feature-version {version.spec.name}={version.version}), publish it "
                f"(fsd publish or fsd sync {info.spec.name}), then run fsd validate {info.spec.name} --feature {version.spec.name} "
                f"--feature-version {version.version}",
                field="version",
            )
        if last[0] < self._min_promotion:
            raise FailedPrecondition(
                f"{ref} consistency {last[0]:.4f} over {last[1]} sampled entities is below the promotion gate {self._min_promotion}",
                field="version",
            )
