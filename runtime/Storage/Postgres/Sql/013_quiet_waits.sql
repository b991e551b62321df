-- Wants that wait on a partition no job of the graph builds (external or another graph's) without a turn of the
-- partition's grain: such a partition does nothing when a want arrives but note it, so the want's own commit notes it
-- here instead (its want_partitions row), and the partition finds these waiters when it becomes available. A lock per
-- partition orders the two: a want holds it shared from its check of the partition's status to its commit, and the
-- partition holds it exclusively from its search for waiters to its commit. Locks of two int keys (namespace 1)
-- never meet the single-key locks of job runs.

-- For each want and partition: the partition's row (missing) if it has none, and then either nothing (the partition is
-- missing and not becoming available: the want_partitions row written in the same commit is the registration) or the
-- want's "waiting" message to the partition as an unleased reminder due now, with a NOTIFY (rare: the partition is
-- available already, or is becoming available right now), so that the partition's turn answers it as before.
CREATE FUNCTION databuild_wait_quietly(refs text[], messages text[], due bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    locked boolean[];
    found_status text;
    sent boolean := false;
    -- Partitions becoming available in this same transaction (a group commit's turns share one): their locks are this
    -- transaction's own, so they cannot turn the want away, and their searches may have run before its rows were written.
    becoming text[] := coalesce(string_to_array(current_setting('databuild.becoming_available', true), ','), '{}');
BEGIN
    INSERT INTO partitions (partition_ref, status, updated_at, waiting_wants)
    SELECT s.r, 'missing', s.d, 0 FROM unnest(refs, due) AS s(r, d)
     ORDER BY s.r -- the same order in every group: two groups inserting the same new partitions never wait on each other in a circle
    ON CONFLICT DO NOTHING;
    -- Never waits for the lock: a partition holding it is becoming available, and is sent the message instead. (The
    -- insert above may wait, for a partition's row that another transaction is writing: behind the lock_timeout of a group.)
    SELECT array_agg(pg_try_advisory_xact_lock_shared(1, hashtext(s.r)) ORDER BY s.i) INTO locked
      FROM unnest(refs) WITH ORDINALITY AS s(r, i);
    FOR i IN 1 .. cardinality(refs) LOOP
        -- Each partition by its key, a statement of its own (its snapshot taken once the locks are held): a join of the
        -- arrays with the table would be planned once, while the table is small, and kept (as in 011 and 012).
        SELECT p.status INTO found_status FROM partitions p WHERE p.partition_ref = refs[i];
        CONTINUE WHEN locked[i] AND found_status = 'missing' AND NOT hashtext(refs[i])::text = ANY (becoming);
        INSERT INTO reminders (grain_type, grain_key, name, due_at, period_ms, first_due, attempt, lease_owner, lease_until, version)
        VALUES ('partition', refs[i], messages[i], due[i], 0, due[i], 0, NULL, NULL, 1)
        ON CONFLICT (grain_type, grain_key, name) DO UPDATE
           SET due_at = excluded.due_at, period_ms = 0, first_due = excluded.first_due, attempt = 0,
               lease_owner = NULL, lease_until = NULL, version = reminders.version + 1;
        sent := true;
    END LOOP;
    IF sent THEN PERFORM pg_notify('databuild_reminders', 'quiet-wait'); END IF;
END $$;

-- A partition becomes available: every want still waiting on it that it has not told itself (told: the wants that
-- registered with a message, and those it found before its turn) is sent the message, as an unleased reminder due now.
-- The exclusive lock waits for the commits of wants that checked the status before it; the setting tells wants later in
-- this same transaction that it is becoming available.
CREATE FUNCTION databuild_tell_quiet_waiters(ref text, message text, due_at_ms bigint, told text[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1, hashtext(ref));
    PERFORM set_config('databuild.becoming_available',
        concat_ws(',', nullif(current_setting('databuild.becoming_available', true), ''), hashtext(ref)::text), true);
    INSERT INTO reminders (grain_type, grain_key, name, due_at, period_ms, first_due, attempt, lease_owner, lease_until, version)
    SELECT 'want', wp.want_id, message, due_at_ms, 0, due_at_ms, 0, NULL, NULL, 1
      FROM want_partitions wp JOIN wants w ON w.want_id = wp.want_id
     WHERE wp.partition_ref = ref AND w.status IN ('idle', 'building', 'upstream_building') AND wp.want_id <> ALL (told)
    ON CONFLICT (grain_type, grain_key, name) DO UPDATE
       SET due_at = excluded.due_at, period_ms = 0, first_due = excluded.first_due, attempt = 0,
           lease_owner = NULL, lease_until = NULL, version = reminders.version + 1;
    IF FOUND THEN PERFORM pg_notify('databuild_reminders', 'quiet-wait'); END IF;
END $$;
