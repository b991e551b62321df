-- Grain state: one row per grain, written only on the expected version (optimistic fencing).
CREATE TABLE grain_state (
    grain_type TEXT    NOT NULL,
    grain_key  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    payload    BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,         -- epoch ms
    PRIMARY KEY (grain_type, grain_key)
) WITHOUT ROWID;

-- Durable reminders: claimed with a lease, versioned so that a stale claim can never complete.
CREATE TABLE reminders (
    grain_type  TEXT    NOT NULL,
    grain_key   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    due_at      INTEGER NOT NULL,        -- epoch ms
    period_ms   INTEGER NOT NULL,        -- 0: one-shot
    first_due   INTEGER NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER,
    version     INTEGER NOT NULL,
    PRIMARY KEY (grain_type, grain_key, name)
) WITHOUT ROWID;
CREATE INDEX reminders_due_idx ON reminders (due_at) WHERE lease_owner IS NULL;
CREATE INDEX reminders_lease_idx ON reminders (lease_until) WHERE lease_owner IS NOT NULL;
CREATE INDEX reminders_owner_idx ON reminders (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE silos (
    silo_id      TEXT PRIMARY KEY,
    address      TEXT    NOT NULL,
    host_name    TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    status       TEXT    NOT NULL
);
