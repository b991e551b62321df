-- The check behind an optimistic hand-off (JobRunQueue.EnqueueAsync): a partition's turn inserts its new run
-- already claimed and commits; this check, earlier in the same batch, refuses the whole turn unless the run may
-- start now. It takes the job's claim lock without waiting (the lock a claim holds to its commit) and then
-- counts the job's runs with a fresh snapshot (each statement of a volatile PL/pgSQL function takes its own),
-- so it sees the previous holder's commit. Refused: SQLSTATE DB001 with the statement's tag, as 005's checks.
CREATE OR REPLACE FUNCTION databuild_hand_off_check(lock_key bigint, label text, max_concurrency bigint, now_ms bigint, tag integer) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    running bigint;
    waiting bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(lock_key) THEN
        RAISE EXCEPTION 'databuild: job % is being claimed by another transaction', label USING ERRCODE = 'DB001', HINT = tag::text;
    END IF;
    SELECT COUNT(*) FILTER (WHERE status = 'running' AND lease_until >= now_ms),
           COUNT(*) FILTER (WHERE status = 'queued' OR (status = 'running' AND lease_until < now_ms))
      INTO running, waiting
      FROM job_runs WHERE job_label = label AND status IN ('queued', 'running');
    IF running >= max_concurrency OR waiting > 0 THEN
        RAISE EXCEPTION 'databuild: job % has no room (% running of %, % waiting)', label, running, max_concurrency, waiting
            USING ERRCODE = 'DB001', HINT = tag::text;
    END IF;
END $$;
