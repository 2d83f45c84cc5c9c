package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// RunService implements orcheo.RunService on SQLite. Each transition is one
// conditional UPDATE plus its event in one IMMEDIATE transaction on the
// single write connection.
type RunService struct{ db *DB }

var _ orcheo.RunService = (*RunService)(nil)

// NewRunService returns the run service of db.
func NewRunService(db *DB) *RunService { return &RunService{db: db} }

// runCols selects a run "r" joined to its version "v".
const runCols = `r.id, r.workflow_id, r.version_id, v.version, r.queue, r.status, r.triggered_by,
	r.input, r.output, r.error, r.attempt, r.max_attempts, r.idempotency_key, r.scheduled_for,
	r.not_before, r.lease_until, r.worker_id, r.created_at, r.enqueued_at, r.started_at, r.completed_at,
	r.released_attempts, r.cancel_requested,
	CASE WHEN r.attempt - r.released_attempts = r.checkpoint_used THEN r.checkpoint END,
	r.parent_run_id, r.root_run_id, r.depth`

const runFrom = ` FROM runs r JOIN workflow_versions v ON v.id = r.version_id`

func scanRun(row rowScanner, extra ...any) (*orcheo.Run, error) {
	var (
		r             orcheo.Run
		status        string
		input, output []byte
		checkpoint    []byte // only the claim that resumes the run sees one: see orcheo.Run.Checkpoint
		key, workerID sql.NullString
		parent, root  sql.NullString
	)
	dest := append([]any{&r.ID, &r.WorkflowID, &r.VersionID, &r.Version, &r.Queue, &status, &r.TriggeredBy,
		&input, &output, &r.Error, &r.Attempt, &r.MaxAttempts, &key, nullTimeCol{&r.ScheduledFor},
		nullTimeCol{&r.NotBefore}, nullTimeCol{&r.LeaseUntil}, &workerID, timeCol{&r.CreatedAt},
		nullTimeCol{&r.EnqueuedAt}, nullTimeCol{&r.StartedAt}, nullTimeCol{&r.CompletedAt}, &r.ReleasedAttempts, &r.CancelRequested, &checkpoint,
		&parent, &root, &r.Depth}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	r.Status = orcheo.RunStatus(status)
	r.Input, r.Output, r.Checkpoint = input, output, checkpoint
	r.IdempotencyKey, r.WorkerID = key.String, workerID.String
	r.ParentRunID, r.RootRunID = parent.String, root.String
	return &r, nil
}

func findRun(ctx context.Context, q querier, id string) (*orcheo.Run, error) {
	r, err := scanRun(q.QueryRowContext(ctx, `SELECT `+runCols+runFrom+` WHERE r.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, rules.RunNotFound(id)
	}
	return r, err
}

func addEvent(ctx context.Context, tx *sql.Tx, id string, at time.Time, kind, message string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO run_events (run_id, at, kind, message) VALUES (?, ?, ?, ?)`,
		id, ts(at), kind, message)
	return err
}

// CreateRun stores run as pending, or returns the run that already holds
// its idempotency key (or cron slot) with created=false. Writers are
// serialised, so the duplicate check cannot race.
func (s *RunService) CreateRun(ctx context.Context, run *orcheo.Run) (*orcheo.Run, bool, error) {
	res := s.CreateRuns(ctx, []*orcheo.Run{run})[0]
	return res.Run, res.Created, res.Err
}

// findDuplicate returns the run holding in's idempotency key or cron slot.
func findDuplicate(ctx context.Context, tx *sql.Tx, in *orcheo.Run) (*orcheo.Run, error) {
	if in.IdempotencyKey != "" {
		r, err := scanRun(tx.QueryRowContext(ctx, `SELECT `+runCols+runFrom+`
			WHERE r.workflow_id = ? AND r.triggered_by = ? AND r.idempotency_key = ?`,
			in.WorkflowID, in.TriggeredBy, in.IdempotencyKey))
		if !errors.Is(err, sql.ErrNoRows) {
			return r, err
		}
	}
	if in.ScheduledFor != nil {
		r, err := scanRun(tx.QueryRowContext(ctx, `SELECT `+runCols+runFrom+`
			WHERE r.workflow_id = ? AND r.scheduled_for = ?`, in.WorkflowID, ts(*in.ScheduledFor)))
		if !errors.Is(err, sql.ErrNoRows) {
			return r, err
		}
	}
	return nil, orcheo.Errorf(orcheo.ECONFLICT, "run conflicts with an existing run of workflow %s", in.WorkflowID)
}

// FindRunByID returns a run with its steps ordered by attempt and seq.
func (s *RunService) FindRunByID(ctx context.Context, id string) (*orcheo.Run, error) {
	r, err := findRun(ctx, s.db.read, id)
	if err != nil {
		return nil, fmt.Errorf("find run: %w", err)
	}
	if r.Steps, err = findSteps(ctx, s.db.read, id); err != nil {
		return nil, err
	}
	return r, nil
}

// ClaimRun moves a due pending run to running: ClaimRuns with one id, so
// the claim's rules are written once.
func (s *RunService) ClaimRun(ctx context.Context, id, workerID string, leaseUntil time.Time) (*orcheo.Run, error) {
	claims, err := s.ClaimRuns(ctx, []string{id}, workerID, leaseUntil)
	if err != nil {
		return nil, fmt.Errorf("claim run %s: %w", id, err)
	}
	return claims[0].Run, claims[0].Err
}

// CompleteRun ends attempt of a running run: CompleteRuns with one item,
// the fenced UPDATE, its steps and its event in one transaction.
func (s *RunService) CompleteRun(ctx context.Context, id string, attempt int, c orcheo.RunCompletion) (*orcheo.Run, error) {
	results, err := s.CompleteRuns(ctx, []orcheo.AttemptCompletion{{RunID: id, Attempt: attempt, Completion: c}})
	if err != nil {
		return nil, fmt.Errorf("complete run %s: %w", id, err)
	}
	return results[0].Run, results[0].Err
}

// CancelRun cancels a pending run, or flags a running one, and records the
// event.
func (s *RunService) CancelRun(ctx context.Context, id string) (*orcheo.Run, error) {
	now := s.db.now()
	var r *orcheo.Run
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET status = CASE status WHEN 'pending' THEN 'cancelled' ELSE status END,
				completed_at = CASE status WHEN 'pending' THEN ?1 ELSE completed_at END,
				lease_until = CASE status WHEN 'pending' THEN NULL ELSE lease_until END,
				cancel_requested = (status = 'running')
			WHERE id = ?2 AND status IN ('pending', 'running')`, ts(now), id)
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
			return rules.NotCancellable(id, status)
		}
		if r, err = findRun(ctx, tx, id); err != nil {
			return err
		}
		if r.Status == orcheo.RunCancelled {
			return addEvent(ctx, tx, id, now, rules.EventCancelled, rules.CancelledPendingMessage)
		}
		return addEvent(ctx, tx, id, now, rules.EventCancelRequested, rules.CancelRequestedMessage)
	})
	if err != nil {
		return nil, fmt.Errorf("cancel run %s: %w", id, err)
	}
	return r, nil
}

// MarkRunUnenqueued clears enqueued_at of a pending run. A run that is no
// longer pending needs no enqueue, so that is not an error; a missing run
// is ENOTFOUND.
func (s *RunService) MarkRunUnenqueued(ctx context.Context, id string) error {
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET enqueued_at = NULL WHERE id = ? AND status = 'pending'`, id); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM runs WHERE id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return rules.RunNotFound(id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark run %s unenqueued: %w", id, err)
	}
	return nil
}

// ClaimUnenqueuedRuns stamps up to limit unenqueued pending runs, oldest
// first, as enqueued now and returns them (ID, Queue and NotBefore): the
// stale-run claim with no stamp old enough to count, so only runs never
// stamped (or marked unenqueued) match. limit <= 0 means
// rules.DefaultUnenqueuedBatch.
func (s *RunService) ClaimUnenqueuedRuns(ctx context.Context, limit int) ([]*orcheo.Run, error) {
	out, err := s.claimForPublish(ctx, time.Time{}, limit)
	if err != nil {
		return nil, fmt.Errorf("claim unenqueued runs: %w", err)
	}
	return out, nil
}
