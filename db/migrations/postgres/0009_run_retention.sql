-- Retention (issue 11): finished runs by completion time, oldest first, for
-- DeleteFinishedRuns (the leader worker's retention pass and orcheo runs
-- purge), so that each small batch reads only the runs it deletes.
CREATE INDEX runs_finished_completed_at_idx ON runs (completed_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled', 'skipped');
