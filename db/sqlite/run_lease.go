package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// ReleaseRun returns attempt of a running run to pending without using it
// up, and records the "released" event, in one transaction.
func (s *RunService) ReleaseRun(ctx context.Context, id string, attempt int) (*orcheo.Run, error) {
	now := s.db.now()
	var r *orcheo.Run
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		var workerID sql.NullString
		err := tx.QueryRowContext(ctx, `UPDATE runs SET status = 'pending', released_attempts = released_attempts + 1,
				lease_until = NULL, enqueued_at = ?3
			WHERE id = ?1 AND status = 'running' AND attempt = ?2
			RETURNING worker_id`, id, attempt, ts(now)).Scan(&workerID)
		if errors.Is(err, sql.ErrNoRows) {
			return attemptConflict(ctx, tx, id, attempt)
		} else if err != nil {
			return err
		}
		msg := fmt.Sprintf("attempt %d handed back by %s", attempt, workerID.String)
		if err := addEvent(ctx, tx, id, now, rules.EventReleased, msg); err != nil {
			return err
		}
		r, err = findRun(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("release run %s: %w", id, err)
	}
	return r, nil
}

// HeartbeatRuns extends the leases of the runs workerID still holds.
func (s *RunService) HeartbeatRuns(ctx context.Context, workerID string, ids []string, until time.Time) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []string
	// Batches keep the statement under SQLite's bound-parameter limit.
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 500)]
		ids = ids[len(batch):]
		args := make([]any, 0, len(batch)+2)
		args = append(args, ts(until), workerID)
		for _, id := range batch {
			args = append(args, id)
		}
		rows, err := s.db.write.QueryContext(ctx, `UPDATE runs SET lease_until = ?
			WHERE status = 'running' AND worker_id = ? AND id IN (?`+strings.Repeat(", ?", len(batch)-1)+`)
			RETURNING id`, args...)
		if err != nil {
			return nil, fmt.Errorf("heartbeat runs of %s: %w", workerID, err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("heartbeat runs of %s: %w", workerID, err)
			}
			out = append(out, id)
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("heartbeat runs of %s: %w", workerID, err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("heartbeat runs of %s: %w", workerID, err)
		}
	}
	return out, nil
}

// RescueExpiredRuns moves running runs whose lease ended before now back to
// pending, or to failed when their attempts are used up, with their events,
// in one transaction on the single writer (so callers get disjoint sets).
func (s *RunService) RescueExpiredRuns(ctx context.Context, now time.Time, limit int) ([]*orcheo.Run, error) {
	if limit <= 0 {
		limit = rules.DefaultUnenqueuedBatch
	}
	now = rules.Time(now)
	var out []*orcheo.Run
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE runs SET
				status = CASE WHEN `+rules.AttemptsLeft+` THEN 'pending' ELSE 'failed' END,
				error = CASE WHEN `+rules.AttemptsLeft+` THEN error ELSE ?2 END,
				completed_at = CASE WHEN `+rules.AttemptsLeft+` THEN NULL ELSE ?1 END,
				enqueued_at = CASE WHEN `+rules.AttemptsLeft+` THEN ?1 ELSE enqueued_at END,
				lease_until = NULL
			WHERE id IN (SELECT id FROM runs WHERE status = 'running' AND lease_until < ?1 ORDER BY lease_until LIMIT ?3)
			RETURNING id, queue, status, attempt, max_attempts, worker_id, not_before, created_at`,
			ts(now), rules.WorkerLost, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				r        orcheo.Run
				status   string
				workerID sql.NullString
			)
			if err := rows.Scan(&r.ID, &r.Queue, &status, &r.Attempt, &r.MaxAttempts, &workerID,
				nullTimeCol{&r.NotBefore}, timeCol{&r.CreatedAt}); err != nil {
				return err
			}
			r.Status, r.WorkerID = orcheo.RunStatus(status), workerID.String
			out = append(out, &r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		for _, r := range out {
			kind := rules.EventRescued
			if r.Status == orcheo.RunFailed {
				kind = rules.EventFailed
			}
			msg := fmt.Sprintf("attempt %d: %s (lease of %s expired)", r.Attempt, rules.WorkerLost, r.WorkerID)
			if err := addEvent(ctx, tx, r.ID, now, kind, msg); err != nil {
				return err
			}
		}
		return nil
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
	rows, err := s.db.write.QueryContext(ctx, `UPDATE runs SET enqueued_at = ?
		WHERE id IN (SELECT id FROM runs WHERE status = 'pending' AND (enqueued_at IS NULL OR enqueued_at < ?)
			ORDER BY created_at LIMIT ?)
		RETURNING id, queue, not_before, created_at`, ts(s.db.now()), ts(enqueuedBefore), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*orcheo.Run
	for rows.Next() {
		var r orcheo.Run
		if err := rows.Scan(&r.ID, &r.Queue, nullTimeCol{&r.NotBefore}, timeCol{&r.CreatedAt}); err != nil {
			return nil, err
		}
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rules.SortByCreated(out)
	return out, nil
}

// attemptConflict explains, inside tx, why a transition fenced on
// (running, attempt) matched no row: the run does not exist (ENOTFOUND) or
// is no longer running that attempt (ECONFLICT).
func attemptConflict(ctx context.Context, tx *sql.Tx, id string, attempt int) error {
	var (
		status  string
		current int
	)
	err := tx.QueryRowContext(ctx, `SELECT status, attempt FROM runs WHERE id = ?`, id).Scan(&status, &current)
	if errors.Is(err, sql.ErrNoRows) {
		return rules.RunNotFound(id)
	} else if err != nil {
		return err
	}
	return rules.NotRunningAttempt(id, attempt, orcheo.RunStatus(status), current)
}

// statusOf returns, inside tx, a run's status, to explain a conditional
// transition that matched no row. Returns ENOTFOUND if the run does not
// exist.
func statusOf(ctx context.Context, tx *sql.Tx, id string) (orcheo.RunStatus, error) {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", rules.RunNotFound(id)
	} else if err != nil {
		return "", err
	}
	return orcheo.RunStatus(status), nil
}
