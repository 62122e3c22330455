"""Thin servicer of fsd.v1.Monitor: status from the freshness monitor (read only), validation through the
validator and the policy actions."""
from __future__ import annotations

import grpc

from fsd.domain import Clock, ValidationResult
from fsd.monitor.actions import PolicyActions, validate_and_act
from fsd.monitor.ledger import ValidationLedger
from fsd.monitor.freshness import FreshnessMonitor
from fsd.monitor.status import status_report
from fsd.monitor.validator import ConsistencyValidator
from fsd.registry.registry import Registry
from fsd.wire import monitor as wire


class MonitorServicer:
    def __init__(self, registry: Registry, monitor: FreshnessMonitor, validator: ConsistencyValidator, actions: PolicyActions,
                 ledger: ValidationLedger, clock: Clock) -> None:
        self._registry = registry
        self._monitor = monitor
        self._validator = validator
        self._actions = actions
        self._ledger = ledger
        self._clock = clock

    def GetStatus(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        report = status_report(self._registry.snapshot(), self._monitor.current(), self._ledger, self._clock.now_micros(), request.group)
        return wire.status_response(report)

    def Validate(self, request, context: grpc.ServicerContext | None) -> object:  # type: ignore[no-untyped-def]
        return wire.validate_response(self.validate(*wire.validate_args(request)))

    def validate(self, group: str, sample: int, skew: bool, action: str, feature: str, versions: list[int] | None) -> ValidationResult:
        return validate_and_act(self._validator, self._actions, group, sample=sample, skew=skew, action=action, feature=feature,
                                versions=versions)

    def SetBlocked(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        _, version = self._registry.snapshot().find_version(request.group, request.feature, request.version)
        self._registry.set_blocked(version.slot, request.blocked)
        return wire.set_blocked_response()

    def PendingResyncs(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        return wire.pending_resyncs_response(self._registry.operations.pending_resyncs())

    def AckResync(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        self._registry.operations.ack_resync(request.id)
        return wire.ack_resync_response()
