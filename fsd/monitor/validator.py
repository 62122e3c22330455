"""Serving-consistency validation: sample entities, compare online value, version and event time with the
offline expectation (latest value as of now for that version), and act by the group's policy."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

from fsd import codec
from fsd.domain import Clock, DType, KeyType, VersionState
from fsd.errors import FailedPrecondition, InvalidArgument
from fsd.monitor.sampling import sample_rows
from fsd.monitor.skew import PSI_THRESHOLD, ServedValues, psi
from fsd.offline.retrieval import FeatureVersion, latest_values
from fsd.offline.store import EVENT_TIMESTAMP, VALUE, OfflineStore
from fsd.online.base import OnlineStore
from fsd.registry.registry import GroupInfo, Registry, VersionInfo

logger = logging.getLogger(__name__)
ACTIONS = ("report", "mark_stale", "block", "resync")


@dataclass(slots=True)
class Mismatches:
    value_differs: int = 0
    version_differs: int = 0
    missing_online: int = 0
    stale: int = 0
    entity_key_drift: int = 0


@dataclass(slots=True)
class FeatureReport:
    feature: str
    version: int
    sampled: int = 0
    matching: int = 0
    mismatches: Mismatches = field(default_factory=Mismatches)
    psi: float = -1.0

    @property
    def consistency(self) -> float:
        return self.matching / self.sampled if self.sampled else 1.0

    @property
    def skewed(self) -> bool:
        return self.psi > PSI_THRESHOLD


@dataclass(slots=True)
class ValidationReport:
    group: str
    features: list[FeatureReport] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


def _same(online: object, offline: object, dtype: DType) -> bool:
    if dtype == DType.FLOAT_VECTOR:
        return offline is not None and np.array_equal(np.asarray(online, dtype=np.float32), np.asarray(offline, dtype=np.float32))
    if dtype == DType.FLOAT:
        return offline is not None and np.float32(online) == np.float32(offline)  # type: ignore[arg-type]
    return online == offline


class ConsistencyValidator:
    def __init__(self, registry: Registry, store: OnlineStore, offline: OfflineStore, clock: Clock, served: ServedValues,
                 min_promotion_consistency: float = 0.995) -> None:
        self._registry = registry
        self._store = store
        self._offline = offline
        self._clock = clock
        self._served = served
        self._min_promotion = min_promotion_consistency

    def _entity_bytes(self, info: GroupInfo, table: pa.Table) -> list[bytes]:
        columns, is_string = [], []
        for key in info.spec.entity_keys:
            string = key.type == KeyType.STRING
            columns.append(table[key.name].to_pylist() if string else table[key.name].to_numpy(zero_copy_only=False).astype(np.int64))
            is_string.append(string)
        return codec.encode_entities(columns, is_string)

    def check_version(self, info: GroupInfo, feature: str, version: VersionInfo, sample: int, skew: bool) -> FeatureReport:
        report = FeatureReport(feature, version.version)
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
                        report.mismatches.version_differs += 1  # bytes of another definition under this version's slot
                    else:
                        report.mismatches.missing_online += 1
                    continue
                if times[i] < offline_times[i]:
                    report.mismatches.stale += 1
                    continue
                online_value = None if is_null[i] else (values[i] if not isinstance(values, np.ndarray) else values[i].tolist())
                if times[i] == offline_times[i] and _same(online_value, offline_values[i], dtype) or (
                    times[i] == offline_times[i] and online_value is None and offline_values[i] is None
                ):
                    report.matching += 1
                else:
                    report.mismatches.value_differs += 1
            if skew and dtype in (DType.INT64, DType.DOUBLE, DType.FLOAT, DType.BOOL):
                report.psi = psi(np.asarray([v for v in expected[VALUE].to_pylist() if v is not None], dtype=np.float64),
                                 self._served.values(version.slot))
        # Entity-key drift: online entities holding this version that the offline store does not know.
        known = set(offline_entities)
        prefix = codec.group_prefix(info.group_id)
        for key, row in sample_rows(self._store, prefix, sample):
            if version.slot in codec.parse_row(row) and key[len(prefix):] not in known:
                report.mismatches.entity_key_drift += 1
        return report

    def validate(self, group: str, *, sample: int = 1000, skew: bool = False, action: str = "", feature: str = "",
                 versions: list[int] | None = None) -> ValidationReport:
        if sample <= 0 or sample > 100_000:
            raise InvalidArgument("sample must be 1 to 100000", field="sample")
        info = self._registry.snapshot().group(group)
        policy = info.spec.policy
        chosen_action = action or policy.on_inconsistency
        if chosen_action not in ACTIONS:
            raise InvalidArgument(f"action must be one of {', '.join(ACTIONS)}", field="action")
        report = ValidationReport(group)
        for name, all_versions in info.versions.items():
            if feature and name != feature:
                continue
            for version in all_versions:
                wanted = version.version in versions if versions else version.state in (VersionState.SERVING, VersionState.PENDING)
                if not wanted:
                    continue
                result = self.check_version(info, name, version, sample, skew)
                report.features.append(result)
                self._registry.operations.record_validation(version.slot, result.consistency, result.sampled, asdict(result.mismatches))
                self._act(info, name, version, result, chosen_action, policy.min_consistency, report)
        return report

    def _act(self, info: GroupInfo, feature: str, version: VersionInfo, result: FeatureReport, action: str, minimum: float,
             report: ValidationReport) -> None:
        ref = f"{info.spec.name}:{feature}@{version.version}"
        threshold = minimum or 1.0
        if result.consistency >= threshold:
            if version.slot in self._registry.blocked_slots():
                self._registry.set_blocked(version.slot, False)
                report.actions.append(f"unblocked {ref}: consistency {result.consistency:.4f} is back above {threshold}")
            if self._registry.set_group_stale(info.spec.name, False, source=f"validator:{version.slot}"):
                report.actions.append(f"cleared the stale mark on {info.spec.name} from {ref}")
            return
        if action == "report":
            return
        if action == "block":
            if version.slot not in self._registry.blocked_slots():
                self._registry.set_blocked(version.slot, True)
                logger.warning("blocked %s: consistency %.4f < %.4f", ref, result.consistency, threshold)
            report.actions.append(f"blocked {ref} (GetFeatures returns BLOCKED)")
        elif action == "mark_stale":
            self._registry.set_group_stale(info.spec.name, True, source=f"validator:{version.slot}")
            report.actions.append(f"marked {info.spec.name} stale")
        if action in ("resync", "block", "mark_stale"):
            request = self._registry.operations.request_resync(info.spec.name, f"{ref} consistency {result.consistency:.4f}")
            report.actions.append(f"resync requested (#{request})")

    def promotion_gate(self, info: GroupInfo, version: VersionInfo) -> None:
        """A PENDING version serves only after a passing validation (fsd validate ... --feature F --version N)."""
        if self._min_promotion <= 0:
            return
        last = self._registry.operations.last_validation(version.slot)
        ref = f"{info.spec.name}:{version.spec.name}@{version.version}"
        if last is None or last[1] == 0:
            raise FailedPrecondition(f"{ref} was never validated against the offline store; run fsd validate first", field="version")
        if last[0] < self._min_promotion:
            raise FailedPrecondition(
                f"{ref} consistency {last[0]:.4f} over {last[1]} sampled entities is below the promotion gate {self._min_promotion}",
                field="version",
            )
