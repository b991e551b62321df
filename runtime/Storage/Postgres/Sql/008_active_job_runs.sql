-- The job's queued and running runs, and only those. The hand-off check (007) and the claim look a job's active
-- runs up by label; through job_runs_queue_idx, a plan made while the table was small took only the label as its
-- index condition and read every run the job ever had, so a hand-off grew slower with the job's history (0.5 ms
-- after 1,600 runs in the dispatch benchmark). A run leaves this index when it finishes.
CREATE INDEX job_runs_active_idx ON job_runs (job_label, status) WHERE status IN ('queued', 'running');
-- Built inside the migration's transaction, so writes to job_runs wait for one scan of the table (a silo migrates
-- before it serves; on a history of millions of runs, expect seconds).
