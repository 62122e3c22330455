"""The README's command blocks run as written, so the documentation cannot rot."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def block_after(heading: str) -> str:
    """The first ```bash block after a heading."""
    section = README.split(heading, 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert match, f"no bash block after {heading!r}"
    return match.group(1)


def run_bash(script: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The block under `bash -eu -o pipefail`, with this interpreter's fsd first on PATH; background jobs are
    stopped however the block ends."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("FSD_TARGET", None)
    wrapped = "set -eu -o pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script + "\nwait\n"
    return subprocess.run(["bash", "-c", wrapped], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_versioning_walkthrough_runs_as_written(tmp_path: Path) -> None:
    run = run_bash(block_after("### Versioning walkthrough"), tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "new_version" in out and "metadata_update" in out
    assert "transaction_velocity:txn_count_1h@2 is now SERVING" in out
    assert "served under manifest fraud_model@1" in out and "refused, as expected" in out
    assert "100.00%" in out and "Traceback" not in run.stderr


@pytest.mark.parametrize("heading", ["### Versioning walkthrough"])
def test_readme_blocks_name_only_real_verbs(heading: str) -> None:
    from fsd.cli import build_parser

    verbs = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    used = set(re.findall(r"^fsd ([a-z-]+)", block_after(heading), flags=re.M))
    assert used <= verbs, used - verbs


def _setup_free(line: str) -> str:
    """A README set-up line without its venv creation and install (this test runs inside an installed venv)."""
    line = re.sub(r"python3 -m venv \.venv && \.venv/bin/pip install -q -e [^&]+&& ", "", line)
    return line.replace(".venv/bin/", "")


def test_the_demo_command_runs_as_written(tmp_path: Path) -> None:
    first = block_after("# fsd — a versioned feature store").split("\n")
    demo = _setup_free(next(l for l in first if "fsd demo" in l))
    run = run_bash(demo, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "daemon stopped cleanly" in run.stdout


def test_the_cluster_command_runs_as_written(tmp_path: Path, redis_cluster) -> None:  # type: ignore[no-untyped-def]
    """Brings a whole local cluster up (its own Redis nodes and PostgreSQL), runs the demo through two replicas, and
    takes everything down again. (The redis_cluster fixture only makes the test skip where the servers are absent.)"""
    first = block_after("# fsd — a versioned feature store").split("\n")
    line = _setup_free(next(l for l in first if "fsd cluster up" in l)).replace("/tmp/fsd-cluster", str(tmp_path / "cluster"))
    run = run_bash(line, tmp_path, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "over redis-cluster with a postgresql registry" in run.stdout
    assert "through replica 2" in run.stdout and "stopped" in run.stdout


def python_block_after(heading: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


def as_a_clone(tmp_path: Path) -> Path:
    """A folder that looks like the clone after command 1: its `.venv` is the venv running this test (activating it
    puts this fsd and python first on PATH), so the blocks' `. .venv/bin/activate` runs as written."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    assert (tmp_path / ".venv" / "bin" / "activate").exists(), "tests run from a venv, as the README's command 2 makes"
    return tmp_path


def test_the_five_command_quickstart_and_its_python_example_run_as_written(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    heading = "## Your first feature store in five commands"
    as_a_clone(tmp_path)
    script = block_after(heading) + "\npython3 <<'PY'\n" + python_block_after(heading) + "PY\nkill %1\n"
    run = run_bash(script.replace("python3 <<", f"{sys.executable} <<"), tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "rows written to" in out and "success" in out                      # ingest, sync
    assert "transaction_velocity:txn_count_1h" in out and "PRESENT" in out    # get
    assert "wrote 100 rows to train.parquet" in out                           # dataset
    assert "fraud_model@1" in out and "transaction_velocity:txn_count_1h:status" in out
    assert (tmp_path / "my-features" / "train.parquet").exists() and (tmp_path / "my-features" / "train_py.parquet").exists()


def test_the_feast_http_block_runs_as_written(tmp_path: Path) -> None:
    run = run_bash(block_after("### Feast users: the same calls over HTTP/JSON"), as_a_clone(tmp_path))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    pushed, served = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")][:2]
    assert pushed["rows_accepted"] == 2
    assert served["metadata"]["feature_names"] == ["customer_id", "transaction_velocity:txn_count_1h", "transaction_velocity:txn_amount_sum_1h"]
    assert served["results"][1]["values"] == [3, 5, None] and served["results"][1]["statuses"][2] == "NOT_FOUND"


def test_the_yaml_examples_load() -> None:
    from fsd.registry.definitions import load_text

    for block in re.findall(r"```yaml\n(.*?)```", README, flags=re.S):
        if block.lstrip().startswith("feature_groups:"):
            assert load_text(block)


def test_the_computed_features_block_runs_as_written(tmp_path: Path) -> None:
    run = run_bash(block_after("### Computed features: a window aggregation declared once"), as_a_clone(tmp_path))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert out.count("2 events accepted") == 2
    assert "92.5" in out and "185.0" in out
    assert "online [185.0] training [185.0]" in out
