-- Hardening (issue 8).
--
-- Idempotency keys are scoped to the trigger that created the run: a public
-- webhook delivery can never find (and so read) a manual or child run by its
-- key, nor take a key first so that the genuine call gets no run.
DROP INDEX runs_workflow_idempotency_key_key;
CREATE UNIQUE INDEX runs_workflow_trigger_idempotency_key_key ON runs (workflow_id, triggered_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Child runs know their place in the tree a root run started, so the depth
-- of the chain of parents, the children of one run and the size of a tree
-- can be bounded (tasks.RunStarter). A root run has neither id and depth 0.
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
ALTER TABLE runs ADD COLUMN root_run_id TEXT;
ALTER TABLE runs ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_root_run_id_idx ON runs (root_run_id) WHERE root_run_id IS NOT NULL;
