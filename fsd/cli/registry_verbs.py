"""Verbs on definitions and versions: plan, apply, groups, history, promote, retire, manifest."""
from __future__ import annotations

import argparse

from fsd.cli.exits import UsageError
from fsd.cli.options import actor, client_from, emit


def _load(path: str) -> list:  # type: ignore[type-arg]
    from fsd.registry.definitions import load_repo

    return load_repo(path)


def cmd_plan(args: argparse.Namespace) -> int:
    from fsd.client.views import changes_table

    groups = _load(args.path)
    with client_from(args) as client:
        result = client.plan(groups)
    changed = sum(c.action != "unchanged" for c in result.changes)
    emit(args, result, lambda: changes_table(result) + f"\nplan against registry revision {result.revision}: {changed} change(s); nothing applied")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from fsd.client.views import changes_table

    groups = _load(args.path)
    with client_from(args) as client:
        plan = client.plan(groups)
        # Applying against the planned revision: a concurrent apply in between is refused, not merged blindly.
        result = client.apply(groups, applied_by=actor(args), reason=args.reason or "", expected_revision=plan.revision)
    emit(args, result, lambda: changes_table(result) + f"\nregistry revision {result.revision}")
    return 0


def parse_version_ref(text: str) -> tuple[str, str, int]:
    from fsd.domain import FeatureRef

    ref = FeatureRef.parse(text)
    if ref.version is None:
        raise UsageError(f"{text!r}: name a version, e.g. {ref.group}:{ref.feature}@2")
    return ref.group, ref.feature, ref.version


def cmd_promote(args: argparse.Namespace) -> int:
    group, feature, version = parse_version_ref(args.ref)
    with client_from(args) as client:
        info = client.promote(group, feature, version, actor=actor(args), reason=args.reason or "", force=args.force)
    emit(args, info, lambda: f"{group}:{feature}@{info.version} is now SERVING")
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    group, feature, version = parse_version_ref(args.ref)
    with client_from(args) as client:
        info = client.retire(group, feature, version, actor=actor(args), reason=args.reason or "", force=args.force)
    emit(args, info, lambda: f"{group}:{feature}@{version} is RETIRED; its online values are purged after the retention period")
    return 0


def cmd_groups(args: argparse.Namespace) -> int:
    from fsd.domain.durations import format_duration
    from fsd.client.tables import render

    with client_from(args) as client:
        groups = client.list_groups()
    rows = []
    for g in groups:
        keys = ",".join(k.name for k in g.spec.entity_keys)
        for f in g.spec.features:
            serving = g.serving_version(f.name)
            pending = [f"v{v.version}" for v in g.versions.get(f.name, ()) if v.state.name == "PENDING"]
            rows.append((g.spec.name, keys, f.name, f.dtype.name.lower(), f"v{serving.version}" if serving else "-", ",".join(pending) or "-",
                         format_duration(f.max_age_seconds or g.spec.max_age_seconds)))
    emit(args, groups, lambda: render(["group", "entity keys", "feature", "dtype", "serving", "pending", "max age"], rows))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from fsd.domain import FeatureRef
    from fsd.domain.durations import format_duration
    from fsd.client.tables import render
    from fsd.client.views import fmt_time

    if ":" in args.ref:
        ref = FeatureRef.parse(args.ref)
        group, feature = ref.group, ref.feature
    else:
        group, feature = args.ref, ""
    with client_from(args) as client:
        history = client.history(group, feature)
        info = client.get_group(group)

    def table() -> str:
        source = info.spec.source or "(no source)"
        rows = []
        for v in history.versions:
            d = v.spec
            lineage = (f"{source} -> {d.transformation or '(identity)'} -> v{v.version} -> offline {group}/{v.feature}/v{v.version}/ "
                       f"-> online rows of group {group}, slot {v.slot}")
            rows.append((f"{v.feature}@{v.version}", v.state.name, d.dtype.name.lower(), format_duration(d.window_seconds) if d.window_seconds else "-",
                         v.behaviour_hash[:12], fmt_time(v.first_published_micros), ",".join(v.pinned_by) or "-", lineage))
        entries = [(fmt_time(e.at_micros), e.revision, e.feature or "(group)", f"v{e.version}" if e.version else "", e.action, e.detail, e.actor, e.reason)
                   for e in history.entries]
        return "\n".join([
            f"versions of {group}{':' + feature if feature else ''}:",
            render(["version", "state", "dtype", "window", "definition hash", "first published", "pinned by", "lineage"], rows),
            "\nhistory:",
            render(["when (UTC)", "rev", "feature", "version", "action", "detail", "who", "why"], entries),
        ])

    emit(args, history, table)
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    from fsd.client.tables import render
    from fsd.client.views import fmt_time

    with client_from(args) as client:
        if args.manifest_command == "create":
            if not args.name:
                raise UsageError("manifest create needs a NAME")
            manifests = [client.create_manifest(args.name, args.features, created_by=actor(args), description=args.description or "")]
        elif args.manifest_command == "delete":
            if not args.name:
                raise UsageError("manifest delete needs a NAME")
            revision = client.delete_manifest(args.name, actor=actor(args), reason=args.description or "")
            emit(args, {"deleted": args.name, "revision": revision}, lambda: f"manifest {args.name} deleted (registry revision {revision})")
            return 0
        elif args.manifest_command == "show":
            if not args.name:
                raise UsageError("manifest show needs a NAME (or NAME@N)")
            manifests = [client.get_manifest(args.name)]
        else:
            manifests = client.list_manifests()

    def table() -> str:
        out = []
        for m in manifests:
            out.append(f"manifest {m.name}@{m.version} (created {fmt_time(m.created_micros)} by {m.created_by or '-'})")
            out.append(render(["feature", "version", "definition hash"], [(f"{p.group}:{p.feature}", f"v{p.version}", p.behaviour_hash[:16]) for p in m.features]))
        return "\n".join(out)

    emit(args, manifests if args.manifest_command == "list" else manifests[0], table)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        detail = client.delete_group(args.name, force=args.force, purge_offline=args.purge_offline, actor=actor(args), reason=args.reason or "")
    emit(args, {"deleted": args.name, "detail": detail}, lambda: detail)
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, connection: argparse.ArgumentParser,  # type: ignore[type-arg]
             output: argparse.ArgumentParser) -> None:
    parents = [common, connection, output]
    for name, func, helptext in (
        ("plan", cmd_plan, "show what apply would change, per feature, without changing anything"),
        ("apply", cmd_apply, "apply a feature repo (folder or YAML file) to the daemon"),
    ):
        p = sub.add_parser(name, parents=parents, help=helptext, description=helptext)
        p.add_argument("path", help="a feature repo: a folder of YAML files, or one YAML file")
        if name == "apply":
            p.add_argument("--by", default=None, help="who (recorded in history; default $USER)")
            p.add_argument("--reason", default=None, help="why (recorded in history)")
        p.set_defaults(func=func)
    for name, func, helptext in (
        ("promote", cmd_promote, "make group:feature@N the SERVING version (gated by validation)"),
        ("retire", cmd_retire, "retire group:feature@N (refused while a manifest pins it, unless --force)"),
    ):
        p = sub.add_parser(name, parents=parents, help=helptext, description=helptext)
        p.add_argument("ref", help="group:feature@N")
        p.add_argument("--by", default=None, help="who (recorded in history; default $USER)")
        p.add_argument("--reason", default=None, help="why (recorded in history)")
        p.add_argument("--force", action="store_true", help="override a promotion gate / break pinning manifests (recorded)")
        p.set_defaults(func=func)
    groups = sub.add_parser("groups", parents=parents, help="list feature groups, features and their SERVING/PENDING versions")
    groups.set_defaults(func=cmd_groups)
    history = sub.add_parser("history", parents=parents, help="versions, definition hashes, lineage and change history")
    history.add_argument("ref", help="group or group:feature")
    history.set_defaults(func=cmd_history)
    manifest = sub.add_parser("manifest", parents=parents, help="model manifests: the feature versions a model was trained on")
    manifest.add_argument("manifest_command", choices=["create", "show", "list", "delete"],
                          help="create a new manifest version, show one, list all, or delete one (every version)")
    manifest.add_argument("name", nargs="?", default="", help="manifest name (show: NAME or NAME@N)")
    manifest.add_argument("--features", nargs="+", default=[], help="group:feature (pins the SERVING version) or group:feature@N")
    manifest.add_argument("--description", default=None, help="what the manifest is for (recorded)")
    manifest.add_argument("--by", default=None, help="who (recorded in history; default $USER)")
    manifest.set_defaults(func=cmd_manifest)
    delete = sub.add_parser("delete", parents=parents, help="delete a feature group (recorded in history; online values purged)")
    delete.add_argument("what", choices=["group"], help="what to delete")
    delete.add_argument("name", help="the feature group")
    delete.add_argument("--force", action="store_true", help="even while manifests pin its versions (breaks them; recorded)")
    delete.add_argument("--purge-offline", action="store_true", help="also remove its offline data (kept by default)")
    delete.add_argument("--by", default=None, help="who (recorded in history; default $USER)")
    delete.add_argument("--reason", default=None, help="why (recorded in history)")
    delete.set_defaults(func=cmd_delete)
