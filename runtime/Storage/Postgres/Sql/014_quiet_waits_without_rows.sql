-- A want waiting quietly no longer gives the partition a partitions row: that row was the largest part of the cost of a
-- want of a partition no job builds, and nothing depends on it. A partition without a row is missing; the API lists
-- such partitions from want_partitions (PartitionQueries). The lock protocol of 013 is unchanged: a partition becoming
-- available holds its lock exclusively from its search to its commit, whether or not it had a row.
CREATE OR REPLACE FUNCTION databuild_wait_quietly(refs text[], messages text[], due bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    locked boolean[];
    found_status text;
    sent boolean := false;
    -- Partitions becoming available in this same transaction (a group commit's turns share one): their locks are this
    -- transaction's own, so they cannot turn the want away, and their searches may have run before its rows were written.
    becoming text[] := coalesce(string_to_array(current_setting('databuild.becoming_available', true), ','), '{}');
BEGIN
    -- Never waits for the lock: a partition holding it is becoming available, and is sent the message instead.
    SELECT array_agg(pg_try_advisory_xact_lock_shared(1, hashtext(s.r)) ORDER BY s.i) INTO locked
      FROM unnest(refs) WITH ORDINALITY AS s(r, i);
    FOR i IN 1 .. cardinality(refs) LOOP
        -- Each partition by its key, a statement of its own (its snapshot taken once the locks are held): a join of the
        -- arrays with the table would be planned once, while the table is small, and kept (as in 011 and 012).
        SELECT p.status INTO found_status FROM partitions p WHERE p.partition_ref = refs[i];
        CONTINUE WHEN locked[i] AND coalesce(found_status, 'missing') = 'missing' AND NOT hashtext(refs[i])::text = ANY (becoming);
        INSERT INTO reminders (grain_type, grain_key, name, due_at, period_ms, first_due, attempt, lease_owner, lease_until, version)
        VALUES ('partition', refs[i], messages[i], due[i], 0, due[i], 0, NULL, NULL, 1)
        ON CONFLICT (grain_type, grain_key, name) DO UPDATE
           SET due_at = excluded.due_at, period_ms = 0, first_due = excluded.first_due, attempt = 0,
               lease_owner = NULL, lease_until = NULL, version = reminders.version + 1;
        sent := true;
    END LOOP;
    IF sent THEN PERFORM pg_notify('databuild_reminders', 'quiet-wait'); END IF;
END $$;
