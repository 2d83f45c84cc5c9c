-- Cron triggers (issue 4): a bound for catch-up "all", the "skipped" status
-- that records a slot not fired because the previous run still ran, and an
-- index for that overlap check.
ALTER TABLE cron_triggers ADD COLUMN catchup_limit INTEGER NOT NULL DEFAULT 0 CHECK (catchup_limit >= 0);

-- SQLite cannot alter a CHECK constraint, and rebuilding runs would cascade
-- deletes into run_steps and run_events. Widening a CHECK in the stored
-- schema text is the documented safe case of writable_schema (it does not
-- change the on-disk format; sqlite.org/lang_altertable.html, section 7);
-- RESET makes every connection reload the schema. The replace matches the
-- end of the status list, so columns other migrations appended are kept.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
    SET sql = replace(sql, '''failed'', ''cancelled'')', '''failed'', ''cancelled'', ''skipped'')')
    WHERE type = 'table' AND name = 'runs';
PRAGMA writable_schema = RESET;

-- FindActiveCronRun: the pending or running cron runs of one workflow.
CREATE INDEX runs_active_slot_idx ON runs (workflow_id, scheduled_for)
    WHERE scheduled_for IS NOT NULL AND status IN ('pending', 'running');
