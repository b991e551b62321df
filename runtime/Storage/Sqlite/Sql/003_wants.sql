-- Read models of wants and partitions, written by their grains in the same transaction as the grain state.
CREATE TABLE wants (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    want_id         TEXT    NOT NULL UNIQUE,
    status          TEXT    NOT NULL,
    partitions      TEXT    NOT NULL,
    data_timestamp  INTEGER NOT NULL,
    ttl_seconds     INTEGER NOT NULL,
    sla_seconds     INTEGER,
    ttl_deadline    INTEGER NOT NULL,
    sla_deadline    INTEGER,
    source_type     TEXT    NOT NULL,
    source_name     TEXT    NOT NULL,
    comment         TEXT,
    parent_want_id  TEXT,
    root_want_id    TEXT    NOT NULL,
    sla_violated    INTEGER NOT NULL,
    sla_violated_at INTEGER,
    created_at      INTEGER NOT NULL,
    satisfied_at    INTEGER,
    finished_at     INTEGER,
    reason          TEXT
);
CREATE INDEX wants_status_idx ON wants (status, seq);
CREATE INDEX wants_source_idx ON wants (source_type, seq);
CREATE INDEX wants_parent_idx ON wants (parent_want_id) WHERE parent_want_id IS NOT NULL;

CREATE TABLE want_partitions (
    partition_ref TEXT NOT NULL,
    want_id       TEXT NOT NULL,
    PRIMARY KEY (partition_ref, want_id)
) WITHOUT ROWID;

CREATE TABLE partitions (
    partition_ref TEXT PRIMARY KEY,
    status        TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL,
    available_at  INTEGER,
    job_run_id    TEXT,
    reason        TEXT,
    waiting_wants INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX partitions_status_idx ON partitions (status, partition_ref);

CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    want_id      TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;
