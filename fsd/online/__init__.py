"""Online stores: the narrow OnlineStore interface and its engines (RocksDB for serving, memory for tests)."""
from fsd.online.base import OnlineStore

__all__ = ["OnlineStore"]
