-- The build event log (BEL).
--
-- Index assignment: an event's index is (its transaction id + xid_offset) << 16, plus its position
-- within the transaction. A reader only returns events below bel_watermark(): the lowest transaction id
-- still running (that could write here), shifted the same way. Every transaction that could still commit has an id at or above
-- that, so its events will land above anything a follower has already read: no gaps, no reordering,
-- and no serialisation between appenders.

CREATE TABLE bel_meta (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Raised at start-up only if the log was restored into a cluster whose transaction ids are lower
    -- than those that numbered the restored events, so that new indexes stay above old ones.
    xid_offset bigint NOT NULL DEFAULT 0
);
INSERT INTO bel_meta DEFAULT VALUES;

CREATE FUNCTION bel_txn_base() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT (pg_current_xact_id()::text::bigint + xid_offset) << 16 FROM bel_meta
$$;

-- The lowest transaction id still running that could append to this database's log: in-progress ids
-- (from the statement's snapshot) that pg_stat_activity shows running in another database are skipped, so
-- writers elsewhere on a shared server do not hold the stream back. An id that cannot be attributed (its
-- backend is gone, or its row is hidden from this role) counts: the stream may wait, never skip.
CREATE FUNCTION bel_watermark() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT (COALESCE(
               (SELECT min(x::text::bigint)
                  FROM pg_snapshot_xip(pg_current_snapshot()) AS x
                 WHERE NOT EXISTS (
                       SELECT 1 FROM pg_stat_activity a
                        WHERE a.backend_xid IS NOT NULL
                          AND a.datname IS DISTINCT FROM current_database()
                          AND a.backend_xid::text::bigint = x::text::bigint % 4294967296)),
               pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
            + xid_offset) << 16
      FROM bel_meta
$$;

CREATE TABLE bel_events (
    idx        bigint PRIMARY KEY,
    event_type text   NOT NULL,
    event_time bigint NOT NULL,   -- epoch ms
    payload    bytea  NOT NULL    -- DataBuildEvent without index and timestamp
);
CREATE INDEX bel_events_type_idx ON bel_events (event_type, idx);

-- One row per want id (kind 1), partition ref (2), job label (3) and job-run id (4) an event mentions.
-- COLLATE "C" makes a prefix a contiguous key range whatever the database's locale.
CREATE TABLE bel_event_keys (
    kind smallint NOT NULL,
    key  text COLLATE "C" NOT NULL,
    idx  bigint NOT NULL,
    PRIMARY KEY (kind, key, idx)
);
