-- Suspended delays (issue 3): a run parked at a long delay keeps what the
-- engine needs to resume after it. checkpoint_used is the number of attempts
-- used (attempt - released_attempts) by the attempt that suspended the run;
-- only a claim with the same count resumes from the checkpoint, so a retry
-- after a failure, a rescue or a manual retry starts over.
ALTER TABLE runs ADD COLUMN checkpoint TEXT CHECK (checkpoint IS NULL OR json_valid(checkpoint));
ALTER TABLE runs ADD COLUMN checkpoint_used INTEGER;
