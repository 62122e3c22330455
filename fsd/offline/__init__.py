"""The offline store: Parquet per (group, feature, version), point-in-time retrieval, latest values for sync."""
