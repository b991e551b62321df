-- bel_txn_base() as PL/pgSQL. A LANGUAGE sql function called from a FROM-less CTE is not inlined, and
-- PostgreSQL 15 parses and plans its body again on every call: twice per grain turn that appends events
-- (7% of the server's CPU under ingest). PL/pgSQL keeps the plan for the session. Same result as 001's.
CREATE OR REPLACE FUNCTION bel_txn_base() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (SELECT (pg_current_xact_id()::text::bigint + xid_offset) << 16 FROM bel_meta);
END $$;
