"""`fsd demo`: a real daemon on a temp data dir serving the fraud example, end to end, then a clean stop."""
from __future__ import annotations

import shutil
import tempfile
import time

from fsd.client import Client
from fsd.config import load_settings
from fsd.examples import FRAUD_REPO, fraud_data
from fsd.registry.definitions import load_repo
from fsd.serving.server import Daemon
from fsd.offline.store import OfflineStore
from fsd.sync.loader import sync_group
from fsd.client.tables import render
from fsd.client.views import features_table, percent, status_tables
from fsd.client.training import ingest_offline


def run_demo(keep_dir: str | None = None, customers: int = 1000, targets: list[str] | None = None) -> int:
    """The fraud example end to end. With `targets` (replicas of a running deployment, e.g. `fsd cluster up`),
    writes go through the first and reads through each of them; otherwise a daemon on a temp dir is started."""
    if targets:
        clients = [Client(t) for t in targets]
        try:
            deployment = clients[0].get_deployment()
            print(f"fsd demo: {len(targets)} replica(s) at {', '.join(targets)} over {deployment.store_engine} "
                  f"with a {deployment.registry_kind} registry\n")
            _tour(clients[0], clients, customers, metrics_hint="")
        finally:
            for client in clients:
                client.close()
        return 0
    data_dir = keep_dir or tempfile.mkdtemp(prefix="fsd-demo-")
    settings = load_settings(env={}, overrides={"server": {"port": 0, "metrics_port": 0}, "store": {"data_dir": data_dir}})
    daemon = Daemon(settings)
    port = daemon.start()
    target = f"127.0.0.1:{port}"
    print(f"fsd demo: daemon on {target}, data dir {data_dir}\n")
    try:
        with Client(target) as client:
            _tour(client, [client], customers, metrics_hint=f" (also as Prometheus metrics on http://127.0.0.1:{daemon.metrics_port}/metrics)")
    finally:
        daemon.stop(grace=2)
        if keep_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print("\ndaemon stopped cleanly.")
    if keep_dir is not None:
        print(f"\nnext: fsd serve --data-dir {keep_dir} & then fsd status, fsd validate transaction_velocity, fsd history transaction_velocity")
    else:
        print("\nnext: fsd init my-repo (a feature repo with sample data and its five commands), fsd --help")
    return 0


def _tour(client: Client, readers: list[Client], customers: int, metrics_hint: str) -> None:
    groups = load_repo(FRAUD_REPO)
    applied = client.apply(groups, applied_by="fsd demo", reason="demo")
    print(f"applied {FRAUD_REPO.name}/ -> registry revision {applied.revision}")
    print(render(["group", "feature", "action", "version"], [(c.group, c.feature or "(group)", c.action, c.version or "") for c in applied.changes]))
    now = time.time_ns() // 1000
    tables = {
        "customer_profile": fraud_data.customer_profile(customers, now),
        "transaction_velocity": fraud_data.transaction_velocity(customers, now),
        "customer_merchant": fraud_data.customer_merchant(customers, now),
    }
    print("\npublished:")
    store = OfflineStore(client.get_deployment().offline_root)  # the deployment's offline store
    for group, table in tables.items():
        started = time.perf_counter()
        if group == "transaction_velocity":  # this one goes the production way: offline store, then the loader
            ingest_offline(client, store, group, table, actor="fsd demo")
            run = sync_group(client, store, group)
            rows, values = run.rows_read, run.values_written
            how = "offline ingest + fsd sync"
        else:
            response = client.publish(group, table)
            rows, values = response.rows_accepted, response.values_written
            how = "Publish"
        took = time.perf_counter() - started
        print(f"  {group:22s} {rows:6d} rows, {values:7d} values in {took * 1000:4.0f} ms ({how})")

    # Customers 1-3 exist; 999999 does not (NOT_FOUND); ~10% of velocity rows are hours old (STALE).
    stale_ids = [int(i) for i, ts in zip(tables["transaction_velocity"]["customer_id"].to_numpy(),
                                          tables["transaction_velocity"]["event_timestamp"].cast("int64").to_numpy())
                 if now - ts > 15 * 60 * 1_000_000 and i > 3][:1]
    ids = [1, 2, 3, *stale_ids, 999_999]
    refs = [
        "transaction_velocity:txn_count_1h",
        "transaction_velocity:txn_amount_sum_1h",
        "transaction_velocity:avg_amount_24h",
        "customer_profile:country",
        "customer_profile:credit_limit",
        "customer_profile:behaviour_embedding@1",
    ]
    for n, reader in enumerate(readers):
        result = reader.get_features(refs, {"customer_id": ids})
        where = f" through replica {n + 1} ({reader.target})" if len(readers) > 1 else ""
        print(f"\nGetFeatures for customer_id in {ids}{where}:")
        print(features_table({"customer_id": ids}, result))
    print(f"\n  STALE: customer {stale_ids[0] if stale_ids else '-'}'s transaction_velocity values are hours old, past the group's 15 min max age "
          "(max_age in its YAML): served, but marked STALE so a model can decide.\n"
          "  NOT_FOUND: customer 999999 has no value under the served version (it was never published); no value is invented.")
    pair = tables["customer_merchant"].slice(0, 2)
    composite = {"customer_id": pair["customer_id"].to_pylist(), "merchant_id": pair["merchant_id"].to_pylist()}
    result = readers[-1].get_features(["customer_merchant:txn_count_30d", "customer_merchant:first_seen_token"], composite)
    print("\nGetFeatures with a composite key (customer_id, merchant_id):")
    print(features_table(composite, result))
    report = client.validate("transaction_velocity", sample=200).features
    print("\nconsistency (online vs offline, 200 sampled entities): "
          + ", ".join(f"{f.feature}@{f.version} {percent(f.consistency)}" for f in report))
    print(f"\nfsd status{metrics_hint}:")
    print(status_tables(client.status()))
