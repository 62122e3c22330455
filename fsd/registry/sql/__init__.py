"""The registry's one SQL store: schema and migrations declared once, run over a small dialect (SQLite, PostgreSQL)."""
from __future__ import annotations

from fsd.registry.sql.store import SqlRegistryStore, open_registry_store, registry_kind

__all__ = ["SqlRegistryStore", "open_registry_store", "registry_kind"]
