"""`fsd init`: a feature repo to start from — the fraud example's definitions, generated sample data (an offline
history and a latest snapshot, as Parquet, plus entity rows for a training set) and a short README."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fsd.errors import FailedPrecondition
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
    """Write the repo into `target` (created; refused if it already holds files)."""
    root = Path(target)
    if root.exists() and any(root.iterdir()):
        raise FailedPrecondition(f"{root} is not empty; choose a new folder for fsd init", field="dir")
    now = now_micros or time.time_ns() // 1000
    (root / "data").mkdir(parents=True, exist_ok=True)
    shutil.copytree(FRAUD_REPO, root / "features", ignore=shutil.ignore_patterns("__pycache__"))
    history = pa.concat_tables([
        fraud_data.transaction_velocity(customers, now - k * 20 * 60 * MICROS, seed=11 + k, stale_share=0.0)
        for k in reversed(range(HISTORY_SNAPSHOTS))
    ])
    pq.write_table(history, root / "data" / "velocity_history.parquet")
    pq.write_table(fraud_data.transaction_velocity(customers, now), root / "data" / "velocity.parquet")
    pq.write_table(fraud_data.customer_profile(customers, now), root / "data" / "profile.parquet")
    sample = min(customers, 100)
    entities = pa.table({
        "customer_id": pa.array(range(1, sample + 1), pa.int64()),
        "event_timestamp": pa.array([now] * sample, pa.timestamp("us", tz="UTC")),
    })
    pq.write_table(entities, root / "data" / "entities.parquet")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now / MICROS))
    (root / "README.md").write_text(README.format(name=root.name, when=when, snapshots=HISTORY_SNAPSHOTS), encoding="utf-8")
    return root
