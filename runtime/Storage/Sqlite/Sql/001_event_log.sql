-- The build event log (BEL). SQLite admits one writer at a time, so an index assigned inside the
-- writing transaction commits in index order: a follower can never see a later index before an earlier one.

CREATE TABLE bel_events (
    idx        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type TEXT    NOT NULL,
    event_time INTEGER NOT NULL,   -- epoch ms
    payload    BLOB    NOT NULL    -- DataBuildEvent without index and timestamp
);
CREATE INDEX bel_events_type_idx ON bel_events (event_type, idx);

-- One row per want id (kind 1), partition ref (2), job label (3) and job-run id (4) an event mentions.
CREATE TABLE bel_event_keys (
    kind INTEGER NOT NULL,
    key  TEXT    NOT NULL,
    idx  INTEGER NOT NULL,
    PRIMARY KEY (kind, key, idx)
) WITHOUT ROWID;
