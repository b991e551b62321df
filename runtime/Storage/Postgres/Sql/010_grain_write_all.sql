-- The state writes of the optimistic turns of one group commit (GroupCommit), as one statement: the checks and writes
-- of databuild_grain_write (009) for every grain at once. The turn locks are taken first, in key order, so that two
-- groups never wait on each other in a cycle; then every new grain is inserted and every other grain is written on
-- the version its turn read. Each statement of a volatile PL/pgSQL function takes its own snapshot, so the writes see
-- the commits of the locks' previous holders. If any grain has moved on, this raises DB001 with no tag: the group is
-- then sent again unmerged, where the turn whose grain moved is named and fails alone. No grain appears twice here
-- (a grain written twice in one group is not merged).
CREATE OR REPLACE FUNCTION databuild_grain_write_all(lock_keys bigint[], g_types text[], g_keys text[], expected bigint[],
                                                     new_payloads bytea[], now_ms bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    inserted bigint;
    updated bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(l.k) FROM (SELECT k FROM unnest(lock_keys) AS k ORDER BY k) AS l;
    INSERT INTO grain_state (grain_type, grain_key, version, payload, updated_at)
    SELECT s.t, s.k, 1, s.p, s.n FROM unnest(g_types, g_keys, expected, new_payloads, now_ms) AS s(t, k, e, p, n) WHERE s.e = 0
    ON CONFLICT (grain_type, grain_key) DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    UPDATE grain_state g SET version = g.version + 1, payload = s.p, updated_at = s.n
      FROM unnest(g_types, g_keys, expected, new_payloads, now_ms) AS s(t, k, e, p, n)
     WHERE s.e <> 0 AND g.grain_type = s.t AND g.grain_key = s.k AND g.version = s.e;
    GET DIAGNOSTICS updated = ROW_COUNT;
    IF inserted + updated <> cardinality(lock_keys) THEN
        RAISE EXCEPTION 'databuild: % of % grains written together were no longer at the versions their turns read',
            cardinality(lock_keys) - inserted - updated, cardinality(lock_keys)
            USING ERRCODE = 'DB001';
    END IF;
END $$;
