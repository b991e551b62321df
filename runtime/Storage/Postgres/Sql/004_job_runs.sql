-- Job runs: queued with the partition's move to building (same transaction), claimed by any silo with a
-- lease renewed by heartbeats, completed only by the holder of the current version.
CREATE TABLE job_runs (
    job_run_id     text PRIMARY KEY,
    seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    job_label      text    NOT NULL,
    status         text    NOT NULL,      -- queued, running, succeeded, failed, missing_deps, cancelled
    partitions     text    NOT NULL,      -- JSON array of refs (up to the job's max_batch)
    ref_count      integer NOT NULL,
    sla_deadline   bigint,                -- earliest SLA deadline of the wants served: dispatch order
    data_timestamp bigint  NOT NULL,
    attempt        integer NOT NULL DEFAULT 0,
    created_at     bigint  NOT NULL,
    started_at     bigint,
    finished_at    bigint,
    lease_owner    text,
    lease_until    bigint,
    version        bigint  NOT NULL,
    pid            integer,
    exit_code      integer,
    reason         text,
    missing_deps   text,                  -- JSON array of refs
    stdout         text,
    stderr         text
);
CREATE INDEX job_runs_queue_idx ON job_runs (job_label, status, sla_deadline, data_timestamp);
CREATE INDEX job_runs_status_idx ON job_runs (status, seq);
