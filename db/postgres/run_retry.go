package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// RetryRun puts a failed or cancelled run back to pending for one more
// attempt, with its "retried" event, in one statement. The attempt counter
// is kept, so the new attempt's steps get their own number.
func (s *RunService) RetryRun(ctx context.Context, id string) (*orcheo.Run, error) {
	if !orcheo.IsID(id) {
		return nil, rules.RunNotFound(id)
	}
	now := s.db.now()
	r, err := scanRun(s.db.retryRow(ctx, retryUnsent, `WITH r AS (
			UPDATE runs SET status = 'pending', max_attempts = attempt - released_attempts + 1,
				not_before = NULL, completed_at = NULL, lease_until = NULL, cancel_requested = false,
				enqueued_at = $2
			WHERE id = $1 AND status IN ('failed', 'cancelled')
			RETURNING *),
		ev AS (
			INSERT INTO run_events (run_id, at, kind, message)
			SELECT id, $2, $3::text, format('retry by hand after attempt %s', attempt) FROM r)
		SELECT `+runCols+` FROM `+runFrom("r"), id, now, rules.EventRetried))
	if err == nil {
		return r, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("retry run %s: %w", id, err)
	}
	status, err := s.statusOf(ctx, "retry", id)
	if err != nil {
		return nil, err
	}
	return nil, rules.NotRetryable(id, status)
}

// FindCancelRequested returns those of ids that are running with a cancel
// requested, by primary key.
func (s *RunService) FindCancelRequested(ctx context.Context, ids []string) ([]string, error) {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if orcheo.IsID(id) {
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return nil, nil
	}
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `SELECT id::text FROM runs
		WHERE id = ANY($1::uuid[]) AND status = 'running' AND cancel_requested`, valid)
	if err != nil {
		return nil, fmt.Errorf("find cancel requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find cancel requests: %w", err)
	}
	return out, nil
}
