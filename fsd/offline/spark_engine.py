"""The point-in-time join on Apache Spark, reading the offline store's Parquet layout directly: one machine or a
cluster, the same answer as fsd.offline.retrieval (a property test compares them on random data).

Spark has no as-of join, so each key set is one window pass: the entity rows and the feature rows are unioned,
partitioned by entity key and ordered by (time, feature rows before entity rows, created time, file, position in
file); each entity row takes, per feature version, the last feature row before it. That is the local engine's
rule: the greatest event time <= the row's time, then the greatest created time, then the row written last.
Every entity row comes back once, in input order, with STALE past max age and NOT_FOUND without history.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fsd.errors import FailedPrecondition
from fsd.offline.partitioned import DatasetSummary
from fsd.offline.retrieval import (
    ROW, TIME, FeatureVersion, add_status_counts, check_entity_rows, checked_key_columns, output_column, status_column, value_type,
)
from fsd.offline.store import OfflineStore

KIND = "__fsd_kind"  # 0 a feature row, 1 an entity row: at equal times the entity row sees the feature row
FEATURE = "__fsd_feature"


def spark_session() -> Any:
    """The active Spark session, or a local one (FSD_SPARK_MASTER, default local[2]) in UTC."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise FailedPrecondition("the spark engine needs pyspark and a JDK 17+: pip install 'fsd[spark]'", field="engine") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    session = (
        SparkSession.builder.master(os.environ.get("FSD_SPARK_MASTER", "local[2]")).appName("fsd-training-set")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", os.environ.get("FSD_SPARK_SHUFFLE_PARTITIONS", "8"))
        .config("spark.driver.memory", os.environ.get("FSD_SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel(os.environ.get("FSD_SPARK_LOG_LEVEL", "ERROR"))
    return session


def _feature_frame(spark: Any, store: OfflineStore, feature: FeatureVersion, n: int, latest: int, as_of_micros: int | None) -> Any:
    from pyspark.sql import functions as F

    base = store.dataset_dir(feature.group, feature.feature, feature.version)
    if not store.data_files(feature.group, feature.feature, feature.version):
        return None
    frame = (spark.read.option("recursiveFileLookup", "true").option("pathGlobFilter", "part-*.parquet").parquet(str(base))
             .select(*[F.col(k).alias(f"__k{i}") for i, k in enumerate(feature.key_names)],
                     F.unix_micros("event_timestamp").alias(TIME), F.unix_micros("created_timestamp").alias("__created"),
                     F.col("_metadata.file_path").alias("__file"), F.col("_metadata.row_index").alias("__pos"),
                     F.col("value").alias(f"__v{n}"))
             .where(F.col(TIME) <= F.lit(latest)))
    if as_of_micros is not None:
        frame = frame.where(F.col("__created") <= F.lit(int(as_of_micros)))
    return frame.withColumn(KIND, F.lit(0)).withColumn(FEATURE, F.lit(n))


def _join_key_set(spark: Any, store: OfflineStore, spine: pa.Table, features: Sequence[FeatureVersion], key_count: int,
                  latest: int, as_of_micros: int | None) -> pa.Table:
    """ROW, then per feature version its value (v<n>) and status (s<n>), in input order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    entities = spark.createDataFrame(spine).withColumn(KIND, F.lit(1))
    frames = [(n, _feature_frame(spark, store, f, n, latest, as_of_micros)) for n, f in enumerate(features)]
    union = entities
    for _, frame in frames:
        if frame is not None:
            union = union.unionByName(frame, allowMissingColumns=True)
    keys = [f"__k{i}" for i in range(key_count)]
    window = (Window.partitionBy(*keys).orderBy(TIME, KIND, "__created", "__file", "__pos")
              .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    columns = [F.col(ROW)]
    for n, frame in frames:
        feature = features[n]
        if frame is None:
            columns += [F.lit(None).alias(f"v{n}"), F.lit(2).cast("tinyint").alias(f"s{n}")]
            continue
        match = F.last(F.when(F.col(FEATURE) == n, F.struct(F.col(TIME).alias("et"), F.col(f"__v{n}").alias("v"))), ignorenulls=True).over(window)
        union = union.withColumn(f"__m{n}", match)
        et = F.col(f"__m{n}.et")
        stale = F.lit(feature.max_age_micros > 0) & ((F.col(TIME) - et) > F.lit(feature.max_age_micros))
        status = F.when(et.isNull(), 2).when(stale, 3).otherwise(1).cast("tinyint")
        columns += [F.when(status == 1, F.col(f"__m{n}.v")).alias(f"v{n}"), status.alias(f"s{n}")]
    result = union.where(F.col(KIND) == 1).select(*columns).orderBy(ROW)
    return result.toArrow()


def get_historical_features(store: OfflineStore, entity_rows: pa.Table, features: Sequence[FeatureVersion], *, as_of_micros: int | None = None,
                            with_status: bool = True, timestamp_column: str = "event_timestamp",
                            summary: DatasetSummary | None = None) -> pa.Table:
    """As fsd.offline.retrieval.get_historical_features, on Spark."""
    times = check_entity_rows(entity_rows, timestamp_column)
    summary = summary if summary is not None else DatasetSummary()
    summary.rows = entity_rows.num_rows
    summary.add_times(times)
    spark = spark_session()
    by_keys: dict[tuple[str, ...], list[int]] = {}
    for n, feature in enumerate(features):
        by_keys.setdefault(feature.key_names, []).append(n)
    joined: dict[int, tuple[pa.ChunkedArray, np.ndarray]] = {}
    for key_names, members in by_keys.items():
        chosen = [features[n] for n in members]
        spine: dict[str, object] = {ROW: pa.array(np.arange(entity_rows.num_rows, dtype=np.int64)), TIME: pa.array(times)}
        for i, column in enumerate(checked_key_columns(entity_rows, chosen[0])):
            spine[f"__k{i}"] = column
        table = _join_key_set(spark, store, pa.table(spine), chosen, len(key_names), int(times.max()), as_of_micros)
        if table.num_rows != entity_rows.num_rows:
            raise RuntimeError(f"spark engine returned {table.num_rows} rows for {entity_rows.num_rows} entity rows")
        for local, n in enumerate(members):
            joined[n] = (table[f"v{local}"], table[f"s{local}"].to_numpy(zero_copy_only=False).astype(np.uint8))
    out = entity_rows
    for n, feature in enumerate(features):
        values, status = joined[n]
        stored = value_type(store, feature)
        name = output_column(out.column_names, feature)
        out = out.append_column(name, values.cast(stored) if stored is not None else values)
        if with_status:
            out = out.append_column(f"{name}:status", status_column(status))
        add_status_counts(summary.status_counts, name, status)
    return out


def write_training_set(store: OfflineStore, entity_rows: pa.Table, features: Sequence[FeatureVersion], out: Path, *,
                       as_of_micros: int | None = None, timestamp_column: str = "event_timestamp") -> DatasetSummary:
    """The training set joined on Spark and written to the Parquet file `out`."""
    summary = DatasetSummary()
    table = get_historical_features(store, entity_rows, features, as_of_micros=as_of_micros, timestamp_column=timestamp_column, summary=summary)
    pq.write_table(table, out, compression="zstd")
    return summary
