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
    allowed = rel.startswith(("serving/", "wire/")) or rel == "client.py"
    assert allowed or not (_uses(imports(path), "grpc") or _uses(imports(path), "grpc_health") or _uses(imports(path), "grpc_reflection")), rel


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_types_only_in_the_wire_package(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    assert rel.startswith("wire/") or not _uses(imports(path), "fsd.v1"), rel


@pytest.mark.parametrize("path", where("online/") + where("offline/"), ids=lambda p: str(p.relative_to(ROOT)))
def test_storage_never_imports_the_registry(path: Path) -> None:
    assert not _uses(imports(path), "fsd.registry"), path


COMPUTING = ["monitor/freshness.py", "monitor/validator.py", "monitor/skew.py", "monitor/sampling.py", "monitor/status.py", "monitor/ledger.py"]
WRITERS = ["fsd.registry", "fsd.publish.publisher", "fsd.sync.loader", "fsd.monitor.actions", "fsd.offline.ingest", "fsd.backup"]


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


def test_the_client_imports_no_server_side_part() -> None:
    names = imports(ROOT / "client.py")
    for part in ("fsd.registry", "fsd.sync", "fsd.lookup", "fsd.serving", "fsd.online", "fsd.monitor"):
        assert not _uses(names, part), part
    # the training methods read the offline store: only when called, never when the client is imported
    assert not _uses(top_level_imports(ROOT / "client.py"), "fsd.offline") and not _uses(top_level_imports(ROOT / "client.py"), "fsd.training")


def test_the_cli_and_the_demo_import_each_other_at_most_one_way() -> None:
    demo = imports(ROOT / "demo.py")
    assert not _uses(demo, "fsd.cli")
