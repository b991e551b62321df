-- Grain state: one row per grain, written only on the expected version (optimistic fencing), and locked
-- FOR UPDATE for the length of a turn so that activations of one grain on several silos take turns.
CREATE TABLE grain_state (
    grain_type text   NOT NULL,
    grain_key  text   NOT NULL,
    version    bigint NOT NULL,
    payload    bytea  NOT NULL,
    updated_at bigint NOT NULL,          -- epoch ms
    PRIMARY KEY (grain_type, grain_key)
);

-- Durable reminders. A silo claims a due one by setting a lease; every claim and every completion bumps
-- the version, so a silo whose lease was taken over cannot complete (or commit the turn of) a stale claim.
CREATE TABLE reminders (
    grain_type  text   NOT NULL,
    grain_key   text   NOT NULL,
    name        text   NOT NULL,
    due_at      bigint NOT NULL,         -- epoch ms
    period_ms   bigint NOT NULL,         -- 0: one-shot
    first_due   bigint NOT NULL,
    attempt     integer NOT NULL DEFAULT 0,
    lease_owner text,
    lease_until bigint,
    version     bigint NOT NULL,
    PRIMARY KEY (grain_type, grain_key, name)
);
CREATE INDEX reminders_due_idx ON reminders (due_at) WHERE lease_owner IS NULL;
CREATE INDEX reminders_lease_idx ON reminders (lease_until) WHERE lease_owner IS NOT NULL;
CREATE INDEX reminders_owner_idx ON reminders (lease_owner) WHERE lease_owner IS NOT NULL;

-- Cluster membership: for observability and for reclaiming a dead silo's leases early. Correctness never
-- depends on it: leases expire on their own and every write is fenced by versions.
CREATE TABLE silos (
    silo_id      text PRIMARY KEY,
    address      text   NOT NULL,
    host_name    text   NOT NULL,
    started_at   bigint NOT NULL,
    heartbeat_at bigint NOT NULL,
    status       text   NOT NULL         -- active, stopped, dead
);
