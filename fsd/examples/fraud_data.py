"""Generates deterministic example data for the fraud repo, with a realistic share of nulls and old values."""
from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

MICROS = 1_000_000
_COUNTRIES = np.array(["DE", "FR", "NL", "ES", "IT", "PL", "SE", "IE"])
_MCCS = np.array(["5411", "5812", "5999", "4121", "7995", "5732", "6011"])
_MERCHANTS = np.array([f"m-{i:04d}" for i in range(50)])


def _ts(micros: np.ndarray) -> pa.Array:
    return pa.array(micros, type=pa.timestamp("us", tz="UTC"))


def customer_profile(customers: int, now_micros: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, customers + 1, dtype=np.int64)
    event = now_micros - rng.integers(1, 20 * 3600, customers) * MICROS  # snapshot within the last day
    has_limit = rng.random(customers) > 0.2
    limits = np.round(rng.choice([500.0, 1000.0, 2500.0, 5000.0, 10000.0], customers), 2)
    embedding_null = rng.random(customers) < 0.05
    embeddings = rng.normal(0, 1, (customers, 8)).astype(np.float32)
    return pa.table(
        {
            "customer_id": ids,
            "event_timestamp": _ts(event),
            "account_age_days": rng.integers(1, 4000, customers),
            "country": pa.array(rng.choice(_COUNTRIES, customers)),
            "is_verified": rng.random(customers) > 0.1,
            "credit_limit": pa.array(limits, mask=~has_limit),
            "behaviour_embedding": pa.array(
                [None if n else row.tolist() for row, n in zip(embeddings, embedding_null)], type=pa.list_(pa.float32())
            ),
        }
    )


def transaction_velocity(customers: int, now_micros: int, seed: int = 11, stale_share: float = 0.1) -> pa.Table:
    """Most values seconds to minutes old; `stale_share` of customers last updated hours ago (served STALE)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, customers + 1, dtype=np.int64)
    age_s = rng.integers(5, 600, customers)
    stale = rng.random(customers) < stale_share
    age_s[stale] = rng.integers(2 * 3600, 6 * 3600, int(stale.sum()))
    counts = rng.poisson(3, customers)
    sums = np.round(counts * rng.gamma(2.0, 20.0, customers), 2)
    no_avg = counts == 0
    return pa.table(
        {
            "customer_id": ids,
            "event_timestamp": _ts(now_micros - age_s * MICROS),
            "txn_count_1h": counts.astype(np.int64),
            "txn_amount_sum_1h": sums,
            "avg_amount_24h": pa.array(rng.gamma(2.0, 25.0, customers).astype(np.float32), mask=no_avg),
            "last_merchant_category": pa.array(rng.choice(_MCCS, customers), mask=no_avg),
        }
    )


def customer_merchant(customers: int, now_micros: int, seed: int = 13, pairs_per_customer: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(1, customers + 1, dtype=np.int64), pairs_per_customer)
    merchants = rng.choice(_MERCHANTS, len(ids))
    tokens = [hashlib.sha256(f"{c}:{m}".encode()).digest()[:12] for c, m in zip(ids, merchants)]
    return pa.table(
        {
            "customer_id": ids,
            "merchant_id": pa.array(merchants),
            "event_timestamp": _ts(now_micros - rng.integers(60, 12 * 3600, len(ids)) * MICROS),
            "txn_count_30d": rng.integers(1, 40, len(ids)),
            "first_seen_token": pa.array(tokens, type=pa.binary()),
        }
    )
