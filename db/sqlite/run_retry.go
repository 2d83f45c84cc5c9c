package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// retryCond is true in CompleteRun's UPDATE when the failed attempt goes
// back to pending for another one: a retry was asked for (?8,
// rules.WantsRetry), no cancel was requested and rules.AttemptsLeft.
const retryCond = `(?8 AND NOT cancel_requested AND ` + rules.AttemptsLeft + `)`

// RetryRun puts a failed or cancelled run back to pending for one more
// attempt and records the "retried" event. The attempt counter is kept, so
// the new attempt's steps get their own number.
func (s *RunService) RetryRun(ctx context.Context, id string) (*orcheo.Run, error) {
	now := s.db.now()
	var r *orcheo.Run
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'pending',
				max_attempts = attempt - released_attempts + 1, not_before = NULL, completed_at = NULL,
				lease_until = NULL, cancel_requested = 0, enqueued_at = ?1
			WHERE id = ?2 AND status IN ('failed', 'cancelled')`, ts(now), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			status, err := statusOf(ctx, tx, id)
			if err != nil {
				return err
			}
			return rules.NotRetryable(id, status)
		}
		if r, err = findRun(ctx, tx, id); err != nil {
			return err
		}
		return addEvent(ctx, tx, id, now, rules.EventRetried, fmt.Sprintf("retry by hand after attempt %d", r.Attempt))
	})
	if err != nil {
		return nil, fmt.Errorf("retry run %s: %w", id, FormatError(err))
	}
	return r, nil
}

// FindCancelRequested returns those of ids that are running with a cancel
// requested, by primary key.
func (s *RunService) FindCancelRequested(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	// One placeholder per id; callers pass a worker's runs in flight, far
	// below SQLite's parameter limit.
	rows, err := s.db.read.QueryContext(ctx, `SELECT id FROM runs WHERE status = 'running' AND cancel_requested
		AND id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("find cancel requests: %w", FormatError(err))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find cancel requests: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find cancel requests: %w", err)
	}
	return out, nil
}
