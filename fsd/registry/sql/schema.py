"""The registry schema, declared once as numbered migrations for both databases ({BIGINT}-style words are the
only dialect differences). Every statement is idempotent, so a SQLite file made before migrations were tracked
upgrades by running them all."""
from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: definitions, history and the operations record
    """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value {BIGINT} NOT NULL);
    CREATE TABLE IF NOT EXISTS deployment (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, group_id {BIGINT} NOT NULL UNIQUE, spec_json TEXT NOT NULL,
                                       created_micros {BIGINT} NOT NULL, updated_micros {BIGINT} NOT NULL);
    CREATE TABLE IF NOT EXISTS feature_versions (
        slot {BIGINT} PRIMARY KEY, group_name TEXT NOT NULL, feature TEXT NOT NULL, version INTEGER NOT NULL, state INTEGER NOT NULL,
        spec_json TEXT NOT NULL, behaviour_hash TEXT NOT NULL, created_micros {BIGINT} NOT NULL,
        first_published_micros {BIGINT}, retired_micros {BIGINT}, purged_micros {BIGINT}, UNIQUE (group_name, feature, version));
    CREATE TABLE IF NOT EXISTS manifests (name TEXT NOT NULL, version INTEGER NOT NULL, created_micros {BIGINT} NOT NULL,
                                          created_by TEXT NOT NULL, description TEXT NOT NULL, features_json TEXT NOT NULL,
                                          PRIMARY KEY (name, version));
    CREATE TABLE IF NOT EXISTS incidents (id {SERIAL}, opened_micros {BIGINT} NOT NULL, group_name TEXT NOT NULL, kind TEXT NOT NULL,
                                          publish_id TEXT NOT NULL, detail TEXT NOT NULL, resolved_micros {BIGINT}, resolved_by TEXT,
                                          resolution TEXT);
    CREATE TABLE IF NOT EXISTS sync_runs (id {SERIAL}, group_name TEXT NOT NULL, started_micros {BIGINT} NOT NULL,
                                          ended_micros {BIGINT} NOT NULL, outcome TEXT NOT NULL, run_json TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS resync_requests (id {SERIAL}, group_name TEXT NOT NULL, reason TEXT NOT NULL,
                                                requested_micros {BIGINT} NOT NULL, done_micros {BIGINT});
    CREATE TABLE IF NOT EXISTS validations (id {SERIAL}, slot {BIGINT} NOT NULL, at_micros {BIGINT} NOT NULL,
                                            consistency {DOUBLE} NOT NULL, sampled {BIGINT} NOT NULL, detail_json TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS history (id {SERIAL}, at_micros {BIGINT} NOT NULL, revision {BIGINT} NOT NULL, group_name TEXT NOT NULL,
                                        feature TEXT NOT NULL, version INTEGER NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL,
                                        actor TEXT NOT NULL, reason TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS blocked_slots (slot {BIGINT} PRIMARY KEY, at_micros {BIGINT} NOT NULL);
    CREATE TABLE IF NOT EXISTS stale_marks (group_name TEXT NOT NULL, source TEXT NOT NULL, at_micros {BIGINT} NOT NULL,
                                            PRIMARY KEY (group_name, source));
    INSERT INTO meta (key, value) VALUES ('revision', 0), ('epoch', 0), ('group_id', 0), ('slot', 0) ON CONFLICT (key) DO NOTHING;
    """,
    # 2: replica coordination, and history read by group without a scan
    """
    CREATE TABLE IF NOT EXISTS replicas (id TEXT PRIMARY KEY, address TEXT NOT NULL, epoch_confirmed {BIGINT} NOT NULL,
                                         heartbeat_micros {BIGINT} NOT NULL, started_micros {BIGINT} NOT NULL, leader BOOLEAN NOT NULL);
    CREATE INDEX IF NOT EXISTS history_group ON history (group_name, id);
    """,
)


def statements(script: str, types: dict[str, str]) -> list[str]:
    """One migration as single statements in a dialect's words (neither driver runs a script with parameters)."""
    text = script
    for word, spelled in types.items():
        text = text.replace("{" + word + "}", spelled)
    return [s.strip() for s in text.split(";") if s.strip()]
