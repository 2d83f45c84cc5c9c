package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// stepCols are the run_steps columns every step query reads and writes.
const stepCols = `run_id, attempt, seq, node, node_type, status, node_attempt, input, output, error, started_at, completed_at`

// stepUpsert is the ON CONFLICT clause that lets a later write of a step
// (its end, or CompleteRun's final list) replace an earlier one (its start).
const stepUpsert = ` ON CONFLICT (run_id, attempt, seq) DO UPDATE SET node = EXCLUDED.node,
	node_type = EXCLUDED.node_type, status = EXCLUDED.status, node_attempt = EXCLUDED.node_attempt,
	input = EXCLUDED.input, output = EXCLUDED.output, error = EXCLUDED.error,
	started_at = EXCLUDED.started_at, completed_at = EXCLUDED.completed_at`

// SaveRunStep upserts one step of a running run in one statement. The run
// row is read FOR SHARE, so a CompleteRun or a takeover committing at the
// same time either waits for this write or makes it insert nothing: a step
// can never land on a run that is no longer running that attempt.
func (s *RunService) SaveRunStep(ctx context.Context, step *orcheo.RunStep) error {
	st, err := rules.Step(step)
	if err != nil {
		return err
	}
	if !orcheo.IsID(st.RunID) {
		return rules.RunNotFound(st.RunID)
	}
	tag, err := s.db.retryExec(ctx, retryIdempotent, `INSERT INTO run_steps (`+stepCols+`)
		SELECT r.id, r.attempt, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12
		FROM (SELECT id, attempt FROM runs WHERE id = $1 AND status = 'running' AND attempt = $2 FOR SHARE) r`+stepUpsert,
		st.RunID, st.Attempt, st.Seq, st.Node, st.NodeType, string(st.Status), st.NodeAttempt,
		nullJSON(st.Input), nullJSON(st.Output), st.Error, st.StartedAt, st.CompletedAt)
	if err != nil {
		return fmt.Errorf("save step %d of run %s: %w", st.Seq, st.RunID, FormatError(err))
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var (
		status  string
		current int
	)
	err = s.db.retryRow(ctx, retryIdempotent, `SELECT status, attempt FROM runs WHERE id = $1`, st.RunID).Scan(&status, &current)
	if errors.Is(err, pgx.ErrNoRows) {
		return rules.RunNotFound(st.RunID)
	} else if err != nil {
		return fmt.Errorf("save step of run %s: %w", st.RunID, err)
	}
	return rules.NotRunningAttempt(st.RunID, st.Attempt, orcheo.RunStatus(status), current)
}

// findSteps returns a run's steps ordered by attempt and seq.
func (s *RunService) findSteps(ctx context.Context, id string) ([]*orcheo.RunStep, error) {
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `SELECT `+stepCols+` FROM run_steps WHERE run_id = $1 ORDER BY attempt, seq`, id)
	if err != nil {
		return nil, fmt.Errorf("find steps of run %s: %w", id, err)
	}
	steps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*orcheo.RunStep, error) {
		var st orcheo.RunStep
		var status string
		var input, output []byte
		if err := row.Scan(&st.RunID, &st.Attempt, &st.Seq, &st.Node, &st.NodeType, &status, &st.NodeAttempt,
			&input, &output, &st.Error, &st.StartedAt, &st.CompletedAt); err != nil {
			return nil, err
		}
		st.Status, st.Input, st.Output = orcheo.StepStatus(status), input, output
		st.StartedAt, st.CompletedAt = st.StartedAt.UTC(), rules.TimePtr(st.CompletedAt)
		return &st, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find steps of run %s: %w", id, err)
	}
	return steps, nil
}
