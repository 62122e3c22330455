"""`import fsd` is what an inference client pays: no registry, storage, YAML, SQLite or write path."""
from __future__ import annotations

import json
import subprocess
import sys

SERVER_SIDE = ["sqlite3", "yaml", "fsd.registry", "fsd.publish.publisher", "fsd.serving.lookup", "fsd.serving", "rocksdict", "fsd.online", "fsd.monitor"]


def test_import_fsd_loads_no_server_side_module() -> None:
    code = f"import sys, json, fsd; print(json.dumps([m for m in {SERVER_SIDE!r} if m in sys.modules]))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(run.stdout) == []


def test_the_public_api_is_all_importable() -> None:
    import fsd

    assert fsd.__all__ and all(hasattr(fsd, name) for name in fsd.__all__)
