-- Run lists (issue 11): keyset pages, newest first by (created_at, id), with
-- an index behind every filter of GET /api/runs, so a page reads its limit
-- of rows along one index at any table size. The workflow and the unfiltered
-- lists already have theirs (0001: runs_workflow_created_at_idx,
-- runs_created_at_idx; a since/until range uses the latter); a run id is the
-- primary key.
--
-- The status index gains id, so that a page after a cursor is one range
-- (what the old index answered, the oldest pending run, this one does too).
DROP INDEX runs_status_created_at_idx;
CREATE INDEX runs_status_created_at_idx ON runs (status, created_at DESC, id DESC);
CREATE INDEX runs_queue_created_at_idx ON runs (queue, created_at DESC, id DESC);
CREATE INDEX runs_trigger_created_at_idx ON runs (triggered_by, created_at DESC, id DESC);
-- Search by idempotency key across workflows and triggers; the unique index
-- of 0007 needs the workflow and the trigger first.
CREATE INDEX runs_idempotency_key_idx ON runs (idempotency_key) WHERE idempotency_key IS NOT NULL;
