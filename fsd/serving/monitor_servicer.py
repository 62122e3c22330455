"""Thin servicer of fsd.v1.Monitor: status from the freshness monitor, validation through the validator."""
from __future__ import annotations

import grpc

from fsd.domain import Clock
from fsd.monitor.freshness import FreshnessMonitor
from fsd.monitor.validator import ConsistencyValidator
from fsd.registry.registry import Registry
from fsd.v1 import monitor_pb2, monitor_pb2_grpc


class MonitorServicer(monitor_pb2_grpc.MonitorServicer):
    def __init__(self, registry: Registry, monitor: FreshnessMonitor, validator: ConsistencyValidator, clock: Clock,
                 last_checks: dict[tuple[str, str, int], tuple[float, float]]) -> None:
        self._registry = registry
        self._monitor = monitor
        self._validator = validator
        self._clock = clock
        self._last_checks = last_checks  # (group, feature, version) -> (consistency, psi), kept for status and metrics

    def GetStatus(self, request: monitor_pb2.StatusRequest, context: grpc.ServicerContext) -> monitor_pb2.StatusResponse:
        snapshot = self._registry.snapshot()
        if request.group:
            snapshot.group(request.group)
        signals = self._monitor.refresh() if not self._monitor.signals() else self._monitor.signals()
        response = monitor_pb2.StatusResponse(now_micros=self._clock.now_micros())
        for name, info in sorted(snapshot.groups.items()):
            if request.group and name != request.group:
                continue
            s = signals.get(name)
            status = response.groups.add(group=name, sync_interval_seconds=info.spec.sync_interval_seconds, max_age_seconds=info.spec.max_age_seconds,
                                         stale=name in snapshot.stale_groups)
            if s is not None:
                status.newest_event_micros = s.newest_event_micros
                status.freshness_lag_seconds = s.freshness_lag_seconds
                status.seconds_since_sync = s.seconds_since_sync
                status.missed_refreshes = s.missed_refreshes
                status.sync_delay_seconds = s.sync_delay_seconds
                status.breaches.extend(s.breaches)
            for feature, versions in info.versions.items():
                for v in versions:
                    if v.state.name not in ("SERVING", "PENDING"):
                        continue
                    sample = s.samples.get(v.slot) if s is not None else None
                    consistency, psi = self._last_checks.get((name, feature, v.version), (-1.0, -1.0))
                    status.features.add(
                        feature=feature, version=v.version, state=v.state.name, stale_entity_ratio=sample.ratio if sample else -1.0,
                        sampled_values=sample.present if sample else 0, blocked=v.slot in snapshot.blocked,
                        last_consistency=consistency, psi=psi,
                    )
        return response

    def Validate(self, request: monitor_pb2.ValidateRequest, context: grpc.ServicerContext) -> monitor_pb2.ValidateResponse:
        report = self._validator.validate(
            request.group, sample=request.sample or 1000, skew=request.skew, action=request.action, feature=request.feature,
            versions=list(request.versions) or None,
        )
        response = monitor_pb2.ValidateResponse(group=report.group, actions_taken=report.actions)
        for f in report.features:
            self._last_checks[(report.group, f.feature, f.version)] = (f.consistency, f.psi)
            m = f.mismatches
            response.features.add(
                feature=f.feature, version=f.version, sampled=f.sampled, matching=f.matching, consistency=f.consistency,
                mismatches=monitor_pb2.MismatchCounts(value_differs=m.value_differs, version_differs=m.version_differs,
                                                      missing_online=m.missing_online, stale=m.stale, entity_key_drift=m.entity_key_drift),
                psi=f.psi, skewed=f.skewed,
            )
        return response

    def SetBlocked(self, request: monitor_pb2.SetBlockedRequest, context: grpc.ServicerContext) -> monitor_pb2.SetBlockedResponse:
        _, version = self._registry.find_version(self._registry.snapshot(), request.group, request.feature, request.version)
        self._registry.set_blocked(version.slot, request.blocked)
        return monitor_pb2.SetBlockedResponse()

    def PendingResyncs(self, request: monitor_pb2.PendingResyncsRequest, context: grpc.ServicerContext) -> monitor_pb2.PendingResyncsResponse:
        return monitor_pb2.PendingResyncsResponse(requests=[
            monitor_pb2.ResyncRequest(id=r[0], group=r[1], reason=r[2], requested_micros=r[3]) for r in self._registry.operations.pending_resyncs()
        ])

    def AckResync(self, request: monitor_pb2.AckResyncRequest, context: grpc.ServicerContext) -> monitor_pb2.AckResyncResponse:
        self._registry.operations.ack_resync(request.id)
        return monitor_pb2.AckResyncResponse()
