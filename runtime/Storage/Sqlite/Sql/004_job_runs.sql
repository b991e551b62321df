-- Job runs: queued with the partition's move to building (same transaction), claimed with a lease.
CREATE TABLE job_runs (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_run_id     TEXT    NOT NULL UNIQUE,
    job_label      TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    partitions     TEXT    NOT NULL,
    ref_count      INTEGER NOT NULL,
    sla_deadline   INTEGER,
    data_timestamp INTEGER NOT NULL,
    attempt        INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER,
    lease_owner    TEXT,
    lease_until    INTEGER,
    version        INTEGER NOT NULL,
    pid            INTEGER,
    exit_code      INTEGER,
    reason         TEXT,
    missing_deps   TEXT,
    stdout         TEXT,
    stderr         TEXT
);
CREATE INDEX job_runs_queue_idx ON job_runs (job_label, status, sla_deadline, data_timestamp);
CREATE INDEX job_runs_status_idx ON job_runs (status, seq);
