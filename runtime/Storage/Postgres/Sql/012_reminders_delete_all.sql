-- Unchecked removals of reminders, several turns' at once (a group commit merges them: under ingest most are the folds of
-- messages sent and delivered within one group). A DELETE … USING unnest(…) was planned as a hash join over the whole
-- table while the table was small, and the cached plan kept it: 3 to 10 ms a call a few thousand rows later (auto_explain,
-- 2026-11-22). As in 011, each row is removed by its primary key, a plan that does not depend on the table's size.
CREATE FUNCTION databuild_reminders_delete_all(g_types text[], g_keys text[], names text[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    FOR i IN 1 .. cardinality(g_keys) LOOP
        DELETE FROM reminders WHERE grain_type = g_types[i] AND grain_key = g_keys[i] AND name = names[i];
    END LOOP;
END $$;
