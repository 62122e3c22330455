"""`fsd init`: a feature repo to start from — the fraud example's definitions, generated sample data (an offline
history and a latest snapshot, as Parquet, plus entity rows for a training set) and a short README."""
from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fsd.errors import FailedPrecondition
from fsd.paths import confine, confine_below, write_new
from fsd.examples import FRAUD_REPO, fraud_data

MICROS = 1_000_000
HISTORY_SNAPSHOTS = 4  # the offline history: one snapshot every 20 minutes, the last one now

README = """# {name}: an fsd feature repo

Made by `fsd init`. `features/` holds the definitions (the fraud example), `data/` sample data generated at
{when} UTC:

| file | what |
|---|---|
| `data/velocity_history.parquet` | transaction_velocity, {snapshots} snapshots 20 minutes apart: the offline history |
| `data/velocity.parquet` | transaction_velocity, the latest snapshot |
| `data/profile.parquet` | customer_profile, one row per customer |
| `data/entities.parquet` | entity rows (customer_id, event_timestamp) to build a training set for |

Your first feature store in five commands (with `fsd serve` running, or `FSD_TARGET` pointing at a daemon):

```bash
fsd apply features/                                                         # 1. register the definitions
fsd offline ingest transaction_velocity data/velocity_history.parquet       # 2. the offline history
fsd sync transaction_velocity                                               # 3. latest values online
fsd get transaction_velocity:txn_count_1h --entity customer_id=1,2,3        # 4. serve them
fsd dataset create --entities data/entities.parquet \\
    --features transaction_velocity:txn_count_1h transaction_velocity:txn_amount_sum_1h --out train.parquet   # 5. a training set
```
"""


def init_repo(target: str | Path, customers: int = 1000, now_micros: int | None = None) -> Path:
    """Write the repo into `target` (created; refused if it already holds files, or when it resolves outside
    FSD_ALLOWED_ROOTS). Every file is created new, never through a symlink planted at its name."""
    root = confine(target, "dir")
    if root.exists() and any(root.iterdir()):
        raise FailedPrecondition(f"{root} is not empty; choose a new folder for fsd init", field="dir")
    now = now_micros or time.time_ns() // 1000
    root.mkdir(parents=True, exist_ok=True)
    root = confine(root, "dir")  # as created: a symlink swapped in meanwhile is caught here
    for folder in ("data", "features"):
        (root / folder).mkdir()
    for source in sorted(FRAUD_REPO.rglob("*")):
        relative = source.relative_to(FRAUD_REPO)
        if "__pycache__" in relative.parts:
            continue
        if source.is_dir():
            confine_below(root, root / "features" / relative.parent)
            (root / "features" / relative).mkdir()
        else:
            write_new(root, root / "features" / relative, source.read_bytes())
    history = pa.concat_tables([
        fraud_data.transaction_velocity(customers, now - k * 20 * 60 * MICROS, seed=11 + k, stale_share=0.0)
        for k in reversed(range(HISTORY_SNAPSHOTS))
    ])
    _write_parquet(root, root / "data" / "velocity_history.parquet", history)
    _write_parquet(root, root / "data" / "velocity.parquet", fraud_data.transaction_velocity(customers, now))
    _write_parquet(root, root / "data" / "profile.parquet", fraud_data.customer_profile(customers, now))
    sample = min(customers, 100)
    entities = pa.table({
        "customer_id": pa.array(range(1, sample + 1), pa.int64()),
        "event_timestamp": pa.array([now] * sample, pa.timestamp("us", tz="UTC")),
    })
    _write_parquet(root, root / "data" / "entities.parquet", entities)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now / MICROS))
    write_new(root, root / "README.md", README.format(name=root.name, when=when, snapshots=HISTORY_SNAPSHOTS).encode("utf-8"))
    return root


def _write_parquet(root: Path, path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_new(root, path, sink.getvalue().to_pybytes())
