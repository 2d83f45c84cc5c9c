-- Step history written while a run runs (issue 3): steps are saved as
-- their nodes start and end, so each row also says which try of its node it
-- is and what the node acted on (an input summary).
ALTER TABLE run_steps ADD COLUMN node_attempt integer NOT NULL DEFAULT 1;
ALTER TABLE run_steps ADD COLUMN input jsonb;
