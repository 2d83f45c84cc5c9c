package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// SuspendRun parks attempt of a running run until notBefore with its
// checkpoint, and records its event, in one transaction. A run whose cancel
// was requested ends cancelled instead, so the cancel is not lost while
// nothing executes it.
func (s *RunService) SuspendRun(ctx context.Context, id string, attempt int, notBefore time.Time, checkpoint json.RawMessage) (*orcheo.Run, error) {
	if err := rules.Checkpoint(checkpoint); err != nil {
		return nil, err
	}
	now := s.db.now()
	var r *orcheo.Run
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		var (
			workerID sql.NullString
			status   string
		)
		err := tx.QueryRowContext(ctx, `UPDATE runs SET
				status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
				completed_at = CASE WHEN cancel_requested THEN ?3 END,
				released_attempts = released_attempts + 1,
				checkpoint_used = attempt - released_attempts,
				checkpoint = ?5, not_before = ?4, enqueued_at = ?3, lease_until = NULL
			WHERE id = ?1 AND status = 'running' AND attempt = ?2
			RETURNING worker_id, status`, id, attempt, ts(now), ts(notBefore), string(checkpoint)).Scan(&workerID, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return attemptConflict(ctx, tx, id, attempt)
		} else if err != nil {
			return err
		}
		kind, msg := rules.EventSuspended, fmt.Sprintf("attempt %d suspended by %s until %s", attempt, workerID.String, rules.Time(notBefore).Format(time.RFC3339))
		if status == string(orcheo.RunCancelled) {
			kind, msg = rules.EventCancelled, fmt.Sprintf("cancelled while suspended, attempt %d", attempt)
		}
		if err := addEvent(ctx, tx, id, now, kind, msg); err != nil {
			return err
		}
		r, err = findRun(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("suspend run %s: %w", id, err)
	}
	return r, nil
}
