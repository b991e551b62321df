-- Checks that run inside a batch of deferred writes (StoreTransaction.Defer*). A failed check raises
-- SQLSTATE DB001 with the failing statement's tag as HINT, which aborts the whole batch: the implicit
-- transaction of a one-round-trip grain turn rolls back with it, and the client maps the tag back to the
-- exception the check stands for (a stale version, a taken idempotency key, a stale reminder claim).

-- A deferred write that must have touched exactly the expected number of rows.
CREATE OR REPLACE FUNCTION databuild_expect_rows(actual bigint, expected bigint, tag integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF actual <> expected THEN
        RAISE EXCEPTION 'databuild: a deferred write affected % rows where % were expected', actual, expected
            USING ERRCODE = 'DB001', HINT = tag::text;
    END IF;
END $$;

-- The fence of an optimistic grain turn: take the grain's turn lock (the same transaction-scoped advisory
-- lock a locked turn takes), then check that the stored version is the one the turn's decisions were based
-- on. The SELECT runs after the lock is granted with a fresh snapshot (READ COMMITTED, volatile function),
-- so it sees the previous lock holder's commit.
CREATE OR REPLACE FUNCTION databuild_grain_fence(lock_key bigint, g_type text, g_key text, expected bigint, tag integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    stored bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT version INTO stored FROM grain_state WHERE grain_type = g_type AND grain_key = g_key;
    IF coalesce(stored, 0) <> expected THEN
        RAISE EXCEPTION 'databuild: grain %/% is at version % but this turn read version %', g_type, g_key, coalesce(stored, 0), expected
            USING ERRCODE = 'DB001', HINT = tag::text;
    END IF;
END $$;
