package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// ReleaseRun returns attempt of a running run to pending without using it
// up, with its "released" event, in one statement.
func (s *RunService) ReleaseRun(ctx context.Context, id string, attempt int) (*orcheo.Run, error) {
	if !orcheo.IsID(id) {
		return nil, rules.RunNotFound(id)
	}
	now := s.db.now()
	r, err := scanRun(s.db.retryRow(ctx, retryUnsent, `WITH r AS (
			UPDATE runs SET status = 'pending', released_attempts = released_attempts + 1,
				lease_until = NULL, enqueued_at = $3
			WHERE id = $1 AND status = 'running' AND attempt = $2
			RETURNING *),
		ev AS (
			INSERT INTO run_events (run_id, at, kind, message)
			SELECT id, $3, $4::text, format('attempt %s handed back by %s', attempt, worker_id) FROM r)
		SELECT `+runCols+` FROM `+runFrom("r"), id, attempt, now, rules.EventReleased))
	if err == nil {
		return r, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("release run %s: %w", id, err)
	}
	return nil, s.attemptConflict(ctx, "release", id, attempt)
}

// HeartbeatRuns extends the leases of the runs workerID still holds. Ids
// that are not valid run ids cannot be held and are left out.
func (s *RunService) HeartbeatRuns(ctx context.Context, workerID string, ids []string, until time.Time) ([]string, error) {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if orcheo.IsID(id) {
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return nil, nil
	}
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `UPDATE runs SET lease_until = $3
		WHERE id = ANY($1::uuid[]) AND status = 'running' AND worker_id = $2
		RETURNING id::text`, valid, workerID, rules.Time(until))
	if err != nil {
		return nil, fmt.Errorf("heartbeat runs of %s: %w", workerID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("heartbeat runs of %s: %w", workerID, err)
	}
	return out, nil
}

// RescueExpiredRuns moves running runs whose lease ended before now back to
// pending, or to failed when their attempts are used up, each with its
// event, in one statement. SKIP LOCKED gives concurrent callers disjoint
// sets.
func (s *RunService) RescueExpiredRuns(ctx context.Context, now time.Time, limit int) ([]*orcheo.Run, error) {
	if limit <= 0 {
		limit = rules.DefaultUnenqueuedBatch
	}
	now = rules.Time(now)
	rows, err := s.db.retryQuery(ctx, retryUnsent, `WITH picked AS (
			SELECT id FROM runs WHERE status = 'running' AND lease_until < $1
			ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED),
		r AS (
			UPDATE runs r SET
				status = CASE WHEN `+rules.AttemptsLeft+` THEN 'pending' ELSE 'failed' END,
				error = CASE WHEN `+rules.AttemptsLeft+` THEN r.error ELSE $3 END,
				completed_at = CASE WHEN `+rules.AttemptsLeft+` THEN NULL ELSE $1 END,
				enqueued_at = CASE WHEN `+rules.AttemptsLeft+` THEN $1 ELSE r.enqueued_at END,
				lease_until = NULL
			FROM picked WHERE r.id = picked.id
			RETURNING r.id, r.queue, r.status, r.attempt, r.max_attempts, r.worker_id, r.not_before, r.created_at, r.lease_until),
		ev AS (
			INSERT INTO run_events (run_id, at, kind, message)
			SELECT id, $1, CASE WHEN status = 'pending' THEN $4::text ELSE $5::text END,
				format('attempt %s: %s (lease of %s expired)', attempt, $3::text, worker_id) FROM r)
		SELECT id, queue, status, attempt, max_attempts, worker_id, not_before, created_at FROM r`,
		now, limit, rules.WorkerLost, rules.EventRescued, rules.EventFailed)
	if err != nil {
		return nil, fmt.Errorf("rescue expired runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*orcheo.Run, error) {
		var (
			r        orcheo.Run
			status   string
			workerID *string
		)
		if err := row.Scan(&r.ID, &r.Queue, &status, &r.Attempt, &r.MaxAttempts, &workerID, &r.NotBefore, &r.CreatedAt); err != nil {
			return nil, err
		}
		r.Status = orcheo.RunStatus(status)
		if workerID != nil {
			r.WorkerID = *workerID
		}
		r.NotBefore, r.CreatedAt = rules.TimePtr(r.NotBefore), r.CreatedAt.UTC()
		return &r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("rescue expired runs: %w", err)
	}
	rules.SortByCreated(out)
	return out, nil
}

// ClaimStaleRuns stamps pending runs enqueued before enqueuedBefore (or
// never) as enqueued now and returns them, oldest first.
func (s *RunService) ClaimStaleRuns(ctx context.Context, enqueuedBefore time.Time, limit int) ([]*orcheo.Run, error) {
	out, err := s.claimForPublish(ctx, enqueuedBefore, limit)
	if err != nil {
		return nil, fmt.Errorf("claim stale runs: %w", err)
	}
	return out, nil
}

// claimForPublish stamps up to limit pending runs never enqueued or
// enqueued before enqueuedBefore as enqueued now, and returns them oldest
// first with ID, Queue, NotBefore and CreatedAt. The zero enqueuedBefore
// matches only runs never enqueued (ClaimUnenqueuedRuns).
func (s *RunService) claimForPublish(ctx context.Context, enqueuedBefore time.Time, limit int) ([]*orcheo.Run, error) {
	if limit <= 0 {
		limit = rules.DefaultUnenqueuedBatch
	}
	rows, err := s.db.retryQuery(ctx, retryUnsent, `WITH picked AS (
			SELECT id FROM runs WHERE status = 'pending' AND (enqueued_at IS NULL OR enqueued_at < $1)
			ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
		UPDATE runs r SET enqueued_at = $3 FROM picked WHERE r.id = picked.id
		RETURNING r.id, r.queue, r.not_before, r.created_at`, rules.Time(enqueuedBefore), limit, s.db.now())
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*orcheo.Run, error) {
		var r orcheo.Run
		if err := row.Scan(&r.ID, &r.Queue, &r.NotBefore, &r.CreatedAt); err != nil {
			return nil, err
		}
		r.NotBefore, r.CreatedAt = rules.TimePtr(r.NotBefore), r.CreatedAt.UTC()
		return &r, nil
	})
	if err != nil {
		return nil, err
	}
	rules.SortByCreated(out)
	return out, nil
}

// attemptConflict explains why a transition fenced on (running, attempt)
// matched no row: the run does not exist (ENOTFOUND) or is no longer running
// that attempt (ECONFLICT). It runs only on that failure path.
func (s *RunService) attemptConflict(ctx context.Context, op, id string, attempt int) error {
	var (
		status  string
		current int
	)
	err := s.db.retryRow(ctx, retryIdempotent, `SELECT status, attempt FROM runs WHERE id = $1`, id).Scan(&status, &current)
	if errors.Is(err, pgx.ErrNoRows) {
		return rules.RunNotFound(id)
	} else if err != nil {
		return fmt.Errorf("%s run %s: %w", op, id, err)
	}
	return rules.NotRunningAttempt(id, attempt, orcheo.RunStatus(status), current)
}

// statusOf returns a run's status, to explain a conditional transition that
// matched no row. Returns ENOTFOUND if the run does not exist.
func (s *RunService) statusOf(ctx context.Context, op, id string) (orcheo.RunStatus, error) {
	var status string
	err := s.db.retryRow(ctx, retryIdempotent, `SELECT status FROM runs WHERE id = $1`, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", rules.RunNotFound(id)
	} else if err != nil {
		return "", fmt.Errorf("%s run %s: %w", op, id, err)
	}
	return orcheo.RunStatus(status), nil
}
