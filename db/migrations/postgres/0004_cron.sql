-- Cron triggers (issue 4): a bound for catch-up "all", the "skipped" status
-- that records a slot not fired because the previous run still ran, and an
-- index for that overlap check.
ALTER TABLE cron_triggers ADD COLUMN catchup_limit integer NOT NULL DEFAULT 0 CHECK (catchup_limit >= 0);

ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'));

-- FindActiveCronRun: the pending or running cron runs of one workflow.
CREATE INDEX runs_active_slot_idx ON runs (workflow_id, scheduled_for)
    WHERE scheduled_for IS NOT NULL AND status IN ('pending', 'running');
