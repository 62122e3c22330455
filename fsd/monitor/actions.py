"""Policy actions: what the monitor's findings do to serving. The only part of fsd/monitor that writes: it marks
groups stale, blocks and unblocks feature versions, opens forced-resync requests and records validations."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict

from fsd.domain import FeatureValidation, GroupInfo, ValidationResult, VersionInfo
from fsd.errors import InvalidArgument
from fsd.monitor.freshness import GroupSignals
from fsd.monitor.ledger import ValidationLedger
from fsd.monitor.validator import ConsistencyValidator
from fsd.registry.definitions import POLICY_ACTIONS
from fsd.registry.registry import Registry

logger = logging.getLogger(__name__)


def check_action(action: str) -> None:
    if action not in POLICY_ACTIONS:
        raise InvalidArgument(f"action must be one of {', '.join(POLICY_ACTIONS)}", field="action")


class PolicyActions:
    def __init__(self, registry: Registry, ledger: ValidationLedger, is_leader: Callable[[], bool] = lambda: True) -> None:
        self._registry = registry
        self._ledger = ledger
        self._is_leader = is_leader  # with replicas, only the leader acts on freshness signals

    def on_freshness(self, signals: dict[str, GroupSignals]) -> None:
        """A breach marks its group stale and opens a forced-resync request; a recovery clears the mark. Logged
        once per transition, not every cycle."""
        if not self._is_leader():
            return
        for name, s in signals.items():
            try:
                changed = self._registry.set_group_stale(name, s.stale)
            except Exception:  # noqa: BLE001 - a group deleted meanwhile must not stop the others
                logger.exception("freshness action on %s failed", name)
                continue
            if not changed:
                continue
            if s.stale:
                request = self._registry.operations.request_resync(name, "; ".join(s.breaches))
                logger.warning("group %s breached its freshness policy (%s): marked stale, resync request %d", name, "; ".join(s.breaches), request)
            else:
                logger.info("group %s is within its freshness policy again", name)

    def on_validation(self, info: GroupInfo, checked: list[tuple[VersionInfo, FeatureValidation]], action: str = "") -> list[str]:
        """Record each validation, then act by the policy (or the caller's `action`); returns what was done."""
        policy = info.spec.policy
        chosen = action or policy.on_inconsistency
        check_action(chosen)
        done: list[str] = []
        for version, result in checked:
            self._registry.operations.record_validation(version.slot, result.consistency, result.sampled, asdict(result.mismatches))
            self._ledger.note(info.spec.name, result)
            self._act(info, version, result, chosen, policy.min_consistency, done)
        return done

    def _act(self, info: GroupInfo, version: VersionInfo, result: FeatureValidation, action: str, minimum: float, done: list[str]) -> None:
        ref = f"{info.spec.name}:{version.spec.name}@{version.version}"
        threshold = minimum or 1.0
        consistency = result.consistency
        if consistency is None:
            done.append(f"{ref}: nothing compared (no offline values sampled); consistency not measured, no action")
            return
        if consistency >= threshold:
            if version.slot in self._registry.blocked_slots():
                self._registry.set_blocked(version.slot, False)
                done.append(f"unblocked {ref}: consistency {consistency:.4f} is back above {threshold}")
            if self._registry.set_group_stale(info.spec.name, False, source=f"validator:{version.slot}"):
                done.append(f"cleared the stale mark on {info.spec.name} from {ref}")
            return
        if action == "report":
            return
        if action == "block":
            if version.slot not in self._registry.blocked_slots():
                self._registry.set_blocked(version.slot, True)
                logger.warning("blocked %s: consistency %.4f < %.4f", ref, consistency, threshold)
            done.append(f"blocked {ref} (GetFeatures returns BLOCKED)")
        elif action == "mark_stale":
            self._registry.set_group_stale(info.spec.name, True, source=f"validator:{version.slot}")
            done.append(f"marked {info.spec.name} stale")
        if action in ("resync", "block", "mark_stale"):
            request = self._registry.operations.request_resync(info.spec.name, f"{ref} consistency {consistency:.4f}")
            done.append(f"resync requested (#{request})")


def validate_and_act(validator: ConsistencyValidator, actions: PolicyActions, group: str, *, sample: int, skew: bool = False,
                     action: str = "", feature: str = "", versions: list[int] | None = None) -> ValidationResult:
    """One validation run: compare, then act by the group's policy (or by `action`, checked before any sampling).
    What the Validate RPC and the periodic validation both run."""
    if action:
        check_action(action)
    info, checked = validator.validate(group, sample=sample, skew=skew, feature=feature, versions=versions)
    done = actions.on_validation(info, checked, action)
    return ValidationResult(info.spec.name, tuple(r for _, r in checked), tuple(done))
