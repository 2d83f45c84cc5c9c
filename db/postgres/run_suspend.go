package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// SuspendRun parks attempt of a running run until notBefore with its
// checkpoint, and writes its event, in one statement. A run whose cancel
// was requested ends cancelled instead, so the cancel is not lost while
// nothing executes it.
func (s *RunService) SuspendRun(ctx context.Context, id string, attempt int, notBefore time.Time, checkpoint json.RawMessage) (*orcheo.Run, error) {
	if !orcheo.IsID(id) {
		return nil, rules.RunNotFound(id)
	}
	if err := rules.Checkpoint(checkpoint); err != nil {
		return nil, err
	}
	now := s.db.now()
	r, err := scanRun(s.db.retryRow(ctx, retryUnsent, `WITH r AS (
			UPDATE runs SET
				status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
				completed_at = CASE WHEN cancel_requested THEN $3::timestamptz END,
				released_attempts = released_attempts + 1,
				checkpoint_used = attempt - released_attempts,
				checkpoint = $5, not_before = $4, enqueued_at = $3::timestamptz, lease_until = NULL
			WHERE id = $1 AND status = 'running' AND attempt = $2
			RETURNING *),
		ev AS (
			INSERT INTO run_events (run_id, at, kind, message)
			SELECT id, $3, CASE WHEN status = 'cancelled' THEN $7::text ELSE $8::text END,
				CASE WHEN status = 'cancelled' THEN format('cancelled while suspended, attempt %s', attempt)
				ELSE format('attempt %s suspended by %s until %s', attempt, worker_id, $6::text) END
			FROM r)
		SELECT `+runCols+` FROM `+runFrom("r"), id, attempt, now, rules.Time(notBefore), []byte(checkpoint),
		rules.Time(notBefore).Format(time.RFC3339), rules.EventCancelled, rules.EventSuspended))
	if err == nil {
		return r, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("suspend run %s: %w", id, err)
	}
	return nil, s.attemptConflict(ctx, "suspend", id, attempt)
}
