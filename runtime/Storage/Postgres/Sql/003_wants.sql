-- Read models of wants and partitions, written by their grains in the same transaction as the grain state,
-- so lists and detail pages are served from committed data without activating grains.
CREATE TABLE wants (
    want_id         text PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    status          text    NOT NULL,
    partitions      text    NOT NULL,      -- JSON array of refs
    data_timestamp  bigint  NOT NULL,      -- epoch ms
    ttl_seconds     bigint  NOT NULL,
    sla_seconds     bigint,
    ttl_deadline    bigint  NOT NULL,
    sla_deadline    bigint,
    source_type     text    NOT NULL,
    source_name     text    NOT NULL,
    comment         text,
    parent_want_id  text,
    root_want_id    text    NOT NULL,
    sla_violated    boolean NOT NULL,
    sla_violated_at bigint,
    created_at      bigint  NOT NULL,
    satisfied_at    bigint,
    finished_at     bigint,
    reason          text
);
CREATE INDEX wants_status_idx ON wants (status, seq);
CREATE INDEX wants_source_idx ON wants (source_type, seq);
CREATE INDEX wants_parent_idx ON wants (parent_want_id) WHERE parent_want_id IS NOT NULL;

CREATE TABLE want_partitions (
    partition_ref text COLLATE "C" NOT NULL,
    want_id       text NOT NULL,
    PRIMARY KEY (partition_ref, want_id)
);

CREATE TABLE partitions (
    partition_ref text COLLATE "C" PRIMARY KEY,
    status        text   NOT NULL,
    updated_at    bigint NOT NULL,
    available_at  bigint,
    job_run_id    text,
    reason        text,
    waiting_wants integer NOT NULL
);
CREATE INDEX partitions_status_idx ON partitions (status, partition_ref);

-- POST /api/v1/wants with an Idempotency-Key: the key commits with the want it created.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    want_id      text   NOT NULL,
    request_hash text   NOT NULL,
    created_at   bigint NOT NULL
);
