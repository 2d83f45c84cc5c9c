-- Leases (issue 5): attempts handed back by a worker that shut down do not
-- count against max_attempts; the attempt number itself never goes down, so
-- each claim keeps its own steps.
ALTER TABLE runs ADD COLUMN released_attempts INTEGER NOT NULL DEFAULT 0
    CHECK (released_attempts >= 0);

-- Pending runs by enqueue time, for the rescuer's search for lost messages
-- (ClaimStaleRuns). Runs never enqueued are in runs_unenqueued_idx.
CREATE INDEX runs_pending_enqueued_at_idx ON runs (enqueued_at) WHERE status = 'pending';
