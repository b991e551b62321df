-- An optimistic grain turn's fence and its state write as one statement (GrainStateTable.FenceAndWrite): take the
-- grain's turn lock, then write the state on the version the turn read. Same checks as 005's fence followed by the
-- version-checked write, in one call instead of two. Each statement of a volatile PL/pgSQL function takes its own
-- snapshot, so the write, after the lock is granted, sees the previous holder's commit; an INSERT that finds the
-- row (on conflict do nothing) or an UPDATE on a moved version touches nothing, and the turn is refused (DB001).
CREATE OR REPLACE FUNCTION databuild_grain_write(lock_key bigint, g_type text, g_key text, expected bigint, new_payload bytea,
                                                 now_ms bigint, tag integer) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    IF expected = 0 THEN
        INSERT INTO grain_state (grain_type, grain_key, version, payload, updated_at) VALUES (g_type, g_key, 1, new_payload, now_ms)
        ON CONFLICT (grain_type, grain_key) DO NOTHING;
    ELSE
        UPDATE grain_state SET version = version + 1, payload = new_payload, updated_at = now_ms
         WHERE grain_type = g_type AND grain_key = g_key AND version = expected;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'databuild: grain %/% is no longer at version %, which this turn read', g_type, g_key, expected
            USING ERRCODE = 'DB001', HINT = tag::text;
    END IF;
END $$;
