"""fsd.v1.Monitor on the wire: status, validation, blocking and resync requests, both ways.

A figure that was not measured (nothing sampled, never validated, no PSI data) travels as NaN and comes back
as None; it is never sent as a number that could pass for a measurement."""
from __future__ import annotations

import math
from typing import NamedTuple

from fsd.domain import (
    FeatureStatus, FeatureValidation, GroupStatus, MismatchCounts, ResyncRequest, StatusReport, ValidationResult,
)
from fsd.v1 import monitor_pb2

NOT_MEASURED = math.nan


def _out(value: float | None) -> float:
    return NOT_MEASURED if value is None else value


def _in(value: float) -> float | None:
    return None if math.isnan(value) or value < 0 else value


def status_request(group: str = "") -> monitor_pb2.StatusRequest:
    return monitor_pb2.StatusRequest(group=group)


def status_response(report: StatusReport) -> monitor_pb2.StatusResponse:
    response = monitor_pb2.StatusResponse(now_micros=report.now_micros)
    for g in report.groups:
        status = response.groups.add(
            group=g.group, sync_interval_seconds=g.sync_interval_seconds, max_age_seconds=g.max_age_seconds, stale=g.stale,
            newest_event_micros=g.newest_event_micros, freshness_lag_seconds=_out(g.freshness_lag_seconds),
            seconds_since_sync=_out(g.seconds_since_sync), missed_refreshes=g.missed_refreshes,
            sync_delay_seconds=_out(g.sync_delay_seconds), breaches=list(g.breaches), alerts=list(g.alerts),
            warnings=list(g.warnings), health=g.health,
        )
        for f in g.features:
            status.features.add(
                feature=f.feature, version=f.version, state=f.state, stale_entity_ratio=_out(f.stale_entity_ratio),
                sampled_values=f.sampled_values, blocked=f.blocked, last_consistency=_out(f.last_consistency), psi=_out(f.psi),
            )
    return response


def status_report(response: monitor_pb2.StatusResponse) -> StatusReport:
    groups = tuple(
        GroupStatus(
            group=g.group, sync_interval_seconds=g.sync_interval_seconds, max_age_seconds=g.max_age_seconds, stale=g.stale,
            newest_event_micros=g.newest_event_micros, freshness_lag_seconds=_in(g.freshness_lag_seconds),
            seconds_since_sync=_in(g.seconds_since_sync), missed_refreshes=g.missed_refreshes, sync_delay_seconds=_in(g.sync_delay_seconds),
            breaches=tuple(g.breaches), alerts=tuple(g.alerts), warnings=tuple(g.warnings),
            features=tuple(
                FeatureStatus(f.feature, f.version, f.state, _in(f.stale_entity_ratio), f.sampled_values, f.blocked, _in(f.last_consistency),
                              _in(f.psi))
                for f in g.features
            ),
        )
        for g in response.groups
    )
    return StatusReport(response.now_micros, groups)


class ValidateArgs(NamedTuple):
    group: str
    sample: int
    skew: bool
    action: str
    feature: str
    versions: list[int] | None


def validate_request(group: str, sample: int, skew: bool, action: str, feature: str, versions: list[int]) -> monitor_pb2.ValidateRequest:
    return monitor_pb2.ValidateRequest(group=group, sample=sample, skew=skew, action=action, feature=feature, versions=versions)


def validate_args(request: monitor_pb2.ValidateRequest) -> ValidateArgs:
    return ValidateArgs(request.group, request.sample or 1000, request.skew, request.action, request.feature, list(request.versions) or None)


def validate_response(result: ValidationResult) -> monitor_pb2.ValidateResponse:
    response = monitor_pb2.ValidateResponse(group=result.group, actions_taken=list(result.actions_taken))
    for f in result.features:
        m = f.mismatches
        response.features.add(
            feature=f.feature, version=f.version, sampled=f.sampled, matching=f.matching, consistency=_out(f.consistency),
            mismatches=monitor_pb2.MismatchCounts(value_differs=m.value_differs, version_differs=m.version_differs,
                                                  missing_online=m.missing_online, stale=m.stale, entity_key_drift=m.entity_key_drift),
            psi=_out(f.psi), skewed=f.skewed,
        )
    return response


def validation_result(response: monitor_pb2.ValidateResponse) -> ValidationResult:
    features = tuple(
        FeatureValidation(
            f.feature, f.version, f.sampled, f.matching,
            MismatchCounts(f.mismatches.value_differs, f.mismatches.version_differs, f.mismatches.missing_online, f.mismatches.stale,
                           f.mismatches.entity_key_drift),
            _in(f.psi),
        )
        for f in response.features
    )
    return ValidationResult(response.group, features, tuple(response.actions_taken))


def set_blocked_request(group: str, feature: str, version: int, blocked: bool) -> monitor_pb2.SetBlockedRequest:
    return monitor_pb2.SetBlockedRequest(group=group, feature=feature, version=version, blocked=blocked)


def pending_resyncs_response(requests: list[ResyncRequest]) -> monitor_pb2.PendingResyncsResponse:
    return monitor_pb2.PendingResyncsResponse(requests=[
        monitor_pb2.ResyncRequest(id=r.id, group=r.group, reason=r.reason, requested_micros=r.requested_micros) for r in requests
    ])


def resync_requests(response: monitor_pb2.PendingResyncsResponse) -> list[ResyncRequest]:
    return [ResyncRequest(r.id, r.group, r.reason, r.requested_micros) for r in response.requests]


pending_resyncs_request = monitor_pb2.PendingResyncsRequest
ack_resync_request = monitor_pb2.AckResyncRequest
ack_resync_response = monitor_pb2.AckResyncResponse
set_blocked_response = monitor_pb2.SetBlockedResponse
