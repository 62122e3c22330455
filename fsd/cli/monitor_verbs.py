"""Verbs for on-call: status, validate, incidents."""
from __future__ import annotations

import argparse
import os
import sys

from fsd.cli import exits
from fsd.cli.exits import UsageError
from fsd.cli.options import actor, client_from, emit


def cmd_incidents(args: argparse.Namespace) -> int:
    from fsd.client.tables import render
    from fsd.client.views import fmt_time

    with client_from(args) as client:
        if args.action == "resolve":
            if not args.id or not args.id.isdigit():
                raise UsageError("incidents resolve needs a numeric incident ID")
            incident = client.resolve_incident(int(args.id), resolved_by=actor(args), resolution=args.note or "")
            emit(args, incident, lambda: f"incident {args.id} resolved")
            return exits.OK
        incidents = client.incidents(include_resolved=args.all)
    rows = [(i.id, fmt_time(i.opened_micros), i.group, i.kind, i.publish_id, i.detail,
             f"{fmt_time(i.resolved_micros)} by {i.resolved_by}: {i.resolution}" if i.resolved_micros else "OPEN") for i in incidents]
    emit(args, incidents, lambda: render(["id", "opened (UTC)", "group", "kind", "publish", "detail", "resolved"], rows))
    return exits.OK


def cmd_replicas(args: argparse.Namespace) -> int:
    import time

    from fsd.client.tables import render
    from fsd.client.views import fmt_time

    with client_from(args) as client:
        replicas, epoch = client.replicas()
    now = time.time_ns() // 1000
    rows = [(r.id, r.address, "yes" if r.leader else "-", r.epoch_confirmed, epoch - r.epoch_confirmed, f"{(now - r.heartbeat_micros) / 1e6:.1f}s",
             fmt_time(r.started_micros)) for r in replicas]
    emit(args, {"registry_epoch": epoch, "replicas": replicas},
         lambda: f"registry epoch {epoch}\n" + render(["replica", "address", "leader", "epoch confirmed", "epochs behind", "last heartbeat", "started (UTC)"], rows)
         if replicas else "no replicas registered (an embedded registry has none: one daemon owns it)")
    return exits.OK


def cmd_status(args: argparse.Namespace) -> int:
    from fsd.client.views import status_tables

    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    flag = (lambda text: f"\033[31m{text}\033[0m") if color else None
    with client_from(args) as client:
        report = client.status(args.group or "")
    emit(args, report, lambda: status_tables(report, flag))
    if args.check:
        failing = [f"{g.group}: {'; '.join([*(['STALE'] if g.stale else []), *g.breaches, *g.alerts])}" for g in report.groups if g.health == "fail"]
        if failing:
            print("check failed: " + " | ".join(failing), file=sys.stderr)
            return exits.CHECK_FAILED
    return exits.OK


def cmd_validate(args: argparse.Namespace) -> int:
    from fsd.client.views import validation_table

    with client_from(args) as client:
        result = client.validate(args.group, sample=args.sample, skew=args.skew, action=args.action or "", feature=args.feature or "",
                                 versions=[args.feature_version] if args.feature_version else [])
        threshold = client.get_group(args.group).spec.policy.min_consistency or 1.0
    emit(args, result, lambda: "\n".join([validation_table(result), *(f"action: {a}" for a in result.actions_taken)]))
    unmeasured = [f"{f.feature}@{f.version}" for f in result.features if f.consistency is None]
    low = [f"{f.feature}@{f.version} {f.consistency:.2%}" for f in result.features if f.consistency is not None and f.consistency < threshold]
    if not result.features or unmeasured or low:
        why = ("nothing to validate" if not result.features else
               "; ".join([*(f"{r}: nothing compared (no offline values)" for r in unmeasured), *(f"{r} < {threshold:.2%}" for r in low)]))
        print(f"check failed: {why}", file=sys.stderr)
        return exits.CHECK_FAILED
    return exits.OK


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, connection: argparse.ArgumentParser,  # type: ignore[type-arg]
             output: argparse.ArgumentParser) -> None:
    parents = [common, connection, output]
    incidents = sub.add_parser("incidents", parents=parents, help="review incidents (e.g. blocked entity-key mismatches)")
    incidents.add_argument("action", nargs="?", choices=["list", "resolve"], default="list", help="list (default) or resolve ID")
    incidents.add_argument("id", nargs="?", default=None, help="the incident to resolve")
    incidents.add_argument("--all", action="store_true", help="include resolved incidents")
    incidents.add_argument("--note", default=None, help="resolution note")
    incidents.add_argument("--by", default=None, help="who resolved it (default $USER)")
    incidents.set_defaults(func=cmd_incidents)

    replicas = sub.add_parser("replicas", parents=parents, help="the fsd replicas sharing this registry, with their lag")
    replicas.set_defaults(func=cmd_replicas)

    status = sub.add_parser("status", parents=parents, help="freshness, sync and consistency per group (breaches flagged)")
    status.add_argument("group", nargs="?", default="", help="only this group")
    status.add_argument("--check", action="store_true", help=f"exit {exits.CHECK_FAILED} when a group is STALE or a version BLOCKED (for cron/CI)")
    status.set_defaults(func=cmd_status)

    validate = sub.add_parser("validate", parents=parents, help="compare sampled online values with the offline truth",
                              description=f"Exits {exits.CHECK_FAILED} when consistency is below the group's min_consistency (1.0 when unset) "
                                          "or nothing could be compared.")
    validate.add_argument("group", help="the feature group")
    validate.add_argument("--sample", type=int, default=1000, help="entities sampled per feature version (default 1000)")
    validate.add_argument("--skew", action="store_true", help="also compute PSI of served vs offline values")
    validate.add_argument("--action", choices=["report", "mark_stale", "block", "resync"], default=None,
                          help="override the group's freshness_policy.on_inconsistency")
    validate.add_argument("--feature", default=None, help="only this feature")
    validate.add_argument("--feature-version", type=int, default=None, help="only this version of --feature")
    validate.set_defaults(func=cmd_validate)
