"""What a user's process runs: the Python client of the daemon (`api`), training sets and offline ingest through
it (`training`), and the tables the `fsd` command prints (`views`, `tables`). Nothing here imports the server side."""
from __future__ import annotations

from fsd.client.api import DEFAULT_TARGET, Client, FeatureValues, OnlineFeatures, table_to_ipc

__all__ = ["Client", "OnlineFeatures", "FeatureValues", "DEFAULT_TARGET", "table_to_ipc"]
