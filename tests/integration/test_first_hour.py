"""The first hour with fsd as a new user meets it: python -m fsd, --version, JSON on the printing verbs, distinct
exit codes, errors that say what to do, CSV and extra columns, a per-group event-time column, deletes, completion."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fsd.client import Client
from fsd.registry.definitions import load_text
from tests.helpers import MICROS, now_micros

TS = pa.timestamp("us", tz="UTC")
REPO = """
feature_groups:
  - name: velocity
    entity_keys: [{name: customer_id, type: int64}]
    timestamp_field: ts
    max_age: 1h
    features:
      - {name: count_1h, dtype: int64}
"""


def fsd(*args: str, env: dict[str, str] | None = None, module: str = "fsd.cli", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
                          cwd=cwd)


@pytest.fixture
def repo_daemon(daemon, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "repo.yaml"
    path.write_text(REPO)
    assert fsd("apply", str(path), "--target", daemon.target).returncode == 0
    return daemon


def test_python_m_fsd_and_version() -> None:
    got = fsd("--version", module="fsd")
    assert got.returncode == 0 and got.stdout.startswith("fsd ") and "proto fsd.v1" in got.stdout and "codec native" in got.stdout


def test_json_output_of_every_printing_verb_parses(repo_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = ["--target", repo_daemon.target, "--output", "json"]
    with Client(repo_daemon.target) as client:
        client.publish("velocity", pa.table({"customer_id": pa.array([1], pa.int64()), "ts": pa.array([now_micros() - MICROS], TS),
                                             "count_1h": pa.array([4], pa.int64())}))
        client.create_manifest("model", ["velocity:count_1h"])
    docs = {}
    for verb in (["groups"], ["get", "velocity:count_1h", "--entity", "customer_id=1"], ["history", "velocity"], ["plan", str(tmp_path / "repo.yaml")],
                 ["status"], ["sync-status"], ["incidents"], ["manifest", "list"], ["manifest", "show", "model"], ["replicas"]):
        got = fsd(*verb, *target)
        assert got.returncode == 0, (verb, got.stderr)
        docs[verb[0] + (verb[1] if verb[0] == "manifest" else "")] = json.loads(got.stdout)
    assert docs["groups"][0]["spec"]["name"] == "velocity" and docs["groups"][0]["spec"]["timestamp_field"] == "ts"
    assert docs["get"]["rows"] == [{"customer_id": 1, "velocity:count_1h": 4, "velocity:count_1h:status": "PRESENT", "velocity:count_1h:version": 1,
                                    "velocity:count_1h:event_time_micros": docs["get"]["rows"][0]["velocity:count_1h:event_time_micros"]}]
    assert docs["manifestshow"]["features"][0]["version"] == 1 and docs["status"]["groups"][0]["group"] == "velocity"
    assert docs["sync-status"]["success_rate"] is None  # not measured: no runs, not 100 %


def test_distinct_exit_codes_and_errors_that_say_what_to_do(repo_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    nobody = fsd("groups", "--target", f"127.0.0.1:{free}")
    assert nobody.returncode == 5 and f"no fsd daemon at 127.0.0.1:{free}" in nobody.stderr and "FSD_TARGET" in nobody.stderr
    assert fsd("groups", "--bogus").returncode == 2  # usage
    assert fsd("get", "nope:x", "--entity", "a=1", "--target", repo_daemon.target).returncode == 1  # refused by the daemon
    missing = fsd("publish", "velocity", str(tmp_path / "absent.parquet"), "--target", repo_daemon.target)
    assert missing.returncode == 1 and "no such file" in missing.stderr
    busy = fsd("serve", "--data-dir", str(tmp_path / "other"), "--port", str(repo_daemon.port), env={"FSD_SERVER_METRICS_PORT": "0"})
    assert busy.returncode == 1 and "in use" in busy.stderr and "--port" in busy.stderr
    locked = fsd("serve", "--data-dir", str(repo_daemon.data_dir), "--port", "0", env={"FSD_SERVER_METRICS_PORT": "0"})
    assert locked.returncode == 1 and "another fsd serve is using" in locked.stderr
    for got in (nobody, missing, busy, locked):
        assert "Traceback" not in got.stderr


def test_csv_extra_columns_and_a_per_group_event_time_column(repo_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv = tmp_path / "v.csv"
    csv.write_text("customer_id,ts,count_1h,note\n1,2026-11-25T10:00:00Z,3,hello\n")
    target = ["--target", repo_daemon.target, "--quiet"]
    refused = fsd("publish", "velocity", str(csv), *target)
    assert refused.returncode == 1 and "'note' is not a feature" in refused.stderr and "--ignore-extra-columns" in refused.stderr
    accepted = fsd("publish", "velocity", str(csv), "--ignore-extra-columns", *target)
    assert accepted.returncode == 0 and "1 rows accepted" in accepted.stdout, accepted.stderr
    assert "ignoring 1 column" in accepted.stderr


def test_deleting_manifests_and_groups(repo_daemon) -> None:  # type: ignore[no-untyped-def]
    target = ["--target", repo_daemon.target]
    with Client(repo_daemon.target) as client:
        client.publish("velocity", pa.table({"customer_id": pa.array([1], pa.int64()), "ts": pa.array([now_micros() - MICROS], TS),
                                             "count_1h": pa.array([4], pa.int64())}))
        client.create_manifest("model", ["velocity:count_1h"])
    pinned = fsd("delete", "group", "velocity", *target)
    assert pinned.returncode == 1 and "model@1" in pinned.stderr
    assert fsd("manifest", "delete", "model", *target).returncode == 0
    assert fsd("manifest", "show", "model", *target).returncode == 1
    deleted = fsd("delete", "group", "velocity", "--by", "ann", "--reason", "replaced", *target)
    assert deleted.returncode == 0 and "online values were purged" in deleted.stdout and "offline data stays" in deleted.stdout
    with Client(repo_daemon.target) as client:
        assert client.list_groups() == []
        client.apply(load_text(REPO))  # a new group of the same name starts empty: its old values were purged
        got = client.get_features(["velocity:count_1h"], {"customer_id": [1]})["velocity:count_1h"]
        assert got.status_names() == ["NOT_FOUND"]
        assert any(e.action == "delete_group" and e.actor == "ann" for e in client.history("velocity").entries)


def test_shell_completion_is_generated_from_the_parser() -> None:
    got = fsd("completion", "bash")
    assert got.returncode == 0 and "complete -o filenames -F _fsd fsd" in got.stdout and "sync-status" in got.stdout
    zsh = fsd("completion", "zsh")
    assert zsh.returncode == 0 and "bashcompinit" in zsh.stdout
    run = subprocess.run(["bash", "-c", got.stdout + '\nCOMP_WORDS=(fsd sync --fu); COMP_CWORD=2; _fsd; echo "${COMPREPLY[@]}"'],
                         capture_output=True, text=True, timeout=30)
    assert run.stdout.strip() == "--full"


def test_every_verb_and_flag_has_help() -> None:
    import argparse

    from fsd.cli import build_parser

    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    described = {c.dest for c in verbs._choices_actions}
    assert described == set(verbs.choices), set(verbs.choices) - described  # a one-line description per verb
    for name, sub in verbs.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"fsd {name}: {action.option_strings or action.dest} has no help"
        assert "--version" not in {o for a in sub._actions for o in a.option_strings}, name  # --version means fsd's version only
