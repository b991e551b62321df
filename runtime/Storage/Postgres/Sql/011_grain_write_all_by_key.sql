-- databuild_grain_write_all (010) wrote the existing grains with one UPDATE … FROM unnest(…). PL/pgSQL planned that
-- join afresh on every call (against a plan for any arrays, which assumes a hundred-odd rows, the plan for the arrays at
-- hand always looked cheaper): about 150 µs of planning per call, as many plans as calls in pg_stat_statements with
-- track_planning. Forced to the generic plan, it kept whatever join it chose while the table was small, a hash join
-- over the whole table: 1.1 ms per call a few thousand grains later. Each grain is now updated by its primary key, one
-- statement per grain, whose plan does not depend on the arrays or the table's size and is planned once per session.
CREATE OR REPLACE FUNCTION databuild_grain_write_all(lock_keys bigint[], g_types text[], g_keys text[], expected bigint[],
                                                     new_payloads bytea[], now_ms bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    inserted bigint;
    updated bigint := 0;
    one bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(l.k) FROM (SELECT k FROM unnest(lock_keys) AS k ORDER BY k) AS l;
    INSERT INTO grain_state (grain_type, grain_key, version, payload, updated_at)
    SELECT s.t, s.k, 1, s.p, s.n FROM unnest(g_types, g_keys, expected, new_payloads, now_ms) AS s(t, k, e, p, n) WHERE s.e = 0
    ON CONFLICT (grain_type, grain_key) DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    FOR i IN 1 .. cardinality(g_keys) LOOP
        CONTINUE WHEN expected[i] = 0;
        UPDATE grain_state SET version = version + 1, payload = new_payloads[i], updated_at = now_ms[i]
         WHERE grain_type = g_types[i] AND grain_key = g_keys[i] AND version = expected[i];
        GET DIAGNOSTICS one = ROW_COUNT;
        updated := updated + one;
    END LOOP;
    IF inserted + updated <> cardinality(lock_keys) THEN
        RAISE EXCEPTION 'databuild: % of % grains written together were no longer at the versions their turns read',
            cardinality(lock_keys) - inserted - updated, cardinality(lock_keys)
            USING ERRCODE = 'DB001';
    END IF;
END $$;
