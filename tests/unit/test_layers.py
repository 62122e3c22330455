"""The architecture's boundaries, checked on the import statements of every module (parsed with ast, not run)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "fsd"
MODULES = sorted(p for p in ROOT.rglob("*.py") if "v1" not in p.relative_to(ROOT).parts)


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module an import statement in `path` names (relative imports resolved), at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _uses(names: set[str], prefix: str) -> bool:
    return any(n == prefix or n.startswith(prefix + ".") for n in names)


def where(rel: str) -> list[Path]:
    return [p for p in MODULES if str(p.relative_to(ROOT)).startswith(rel)]


def test_the_tree_is_parsed() -> None:
    assert len(MODULES) > 50 and all(imports(p) is not None for p in MODULES)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_grpc_only_in_serving_wire_and_the_client(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    allowed = rel.startswith(("serving/", "wire/")) or rel == "client/api.py"
    assert allowed or not (_uses(imports(path), "grpc") or _uses(imports(path), "grpc_health") or _uses(imports(path), "grpc_reflection")), rel


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_types_only_in_the_wire_package(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    assert rel.startswith("wire/") or not _uses(imports(path), "fsd.v1"), rel


@pytest.mark.parametrize("path", where("online/") + where("offline/"), ids=lambda p: str(p.relative_to(ROOT)))
def test_storage_never_imports_the_registry(path: Path) -> None:
    assert not _uses(imports(path), "fsd.registry"), path


COMPUTING = ["monitor/freshness.py", "monitor/validator.py", "monitor/skew.py", "monitor/sampling.py", "monitor/status.py", "monitor/ledger.py"]
WRITERS = ["fsd.registry", "fsd.publish", "fsd.sync", "fsd.monitor.actions", "fsd.offline.ingest", "fsd.serving.backup"]


@pytest.mark.parametrize("rel", COMPUTING)
def test_monitor_computation_never_imports_writers(rel: str) -> None:
    names = imports(ROOT / rel)
    assert not [w for w in WRITERS if _uses(names, w)], rel


@pytest.mark.parametrize("path", where("domain/"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_domain_layer_imports_no_other_part(path: Path) -> None:
    names = {n for n in imports(path) if n.startswith("fsd.")}
    assert all(n.startswith(("fsd.domain", "fsd.errors")) for n in names), (path, names)


def top_level_imports(path: Path) -> set[str]:
    """Modules imported when `path` is imported (not the ones its functions import when called)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", where("client/"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_client_imports_no_server_side_part(path: Path) -> None:
    names = imports(path)
    for part in ("fsd.registry", "fsd.sync", "fsd.publish", "fsd.serving", "fsd.online", "fsd.monitor", "fsd.dev", "fsd.cli"):
        assert not _uses(names, part), part


def test_the_client_loads_the_offline_side_only_when_asked() -> None:
    # the training methods read the offline store: only when called, never when the client is imported
    top = top_level_imports(ROOT / "client" / "api.py") | top_level_imports(ROOT / "client" / "__init__.py")
    assert not _uses(top, "fsd.offline") and not _uses(top, "fsd.client.training")
    assert not _uses(top_level_imports(ROOT / "client" / "training.py"), "fsd.client.api")  # one way: api -> training


@pytest.mark.parametrize("path", [p for p in MODULES if not str(p.relative_to(ROOT)).startswith(("dev/", "cli/"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_command_reaches_the_developer_tools(path: Path) -> None:
    assert not _uses(imports(path), "fsd.dev"), path


@pytest.mark.parametrize("path", where("rows/") + where("offline/") + where("publish/"), ids=lambda p: str(p.relative_to(ROOT)))
def test_rows_sit_below_sync_and_offline(path: Path) -> None:
    names = imports(path)
    assert not _uses(names, "fsd.sync") and not _uses(names, "fsd.client"), path
    if str(path.relative_to(ROOT)).startswith("rows/"):
        assert not [p for p in ("fsd.offline", "fsd.publish", "fsd.registry", "fsd.online") if _uses(names, p)], path


@pytest.mark.parametrize("path", where("registry/"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_registry_stands_above_no_write_path(path: Path) -> None:
    names = imports(path)
    assert not [p for p in ("fsd.rows", "fsd.sync", "fsd.publish", "fsd.offline", "fsd.online", "fsd.serving", "fsd.client") if _uses(names, p)] \
        or _only_rules(names), path
    assert not _uses(top_level_imports(path), "pyarrow"), path


def _only_rules(names: set[str]) -> bool:
    """The registry applies one publish rule (schema_expansion) when a definition adds a feature."""
    return {n for n in names if n.startswith(("fsd.rows", "fsd.sync", "fsd.publish", "fsd.offline", "fsd.online", "fsd.serving", "fsd.client"))} \
        <= {"fsd.rows", "fsd.rows.rules"}


@pytest.mark.parametrize("path", where("sync/"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_loader_is_client_side(path: Path) -> None:
    names = imports(path)
    assert not [p for p in ("fsd.serving", "fsd.publish", "fsd.registry", "fsd.online") if _uses(names, p)], path


def test_importing_the_registry_loads_no_pyarrow() -> None:
    import subprocess
    import sys

    code = "import sys, fsd.registry.registry, fsd.registry.versioning, fsd.registry.sql; print('pyarrow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_the_cli_and_the_demo_import_each_other_at_most_one_way() -> None:
    demo = imports(ROOT / "dev" / "demo.py")
    assert not _uses(demo, "fsd.cli")
