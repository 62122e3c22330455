"""The committed gRPC/protobuf modules are exactly what proto/ generates (never hand-edited)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_matches_proto() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "proto" / "generate.py"), "--check"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
