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

// RunService implements orcheo.RunService on PostgreSQL.
type RunService struct {
	db     *DB
	arrays bool // batches of one too use the array forms (rowForms, run_batch.go): benchmarks compare
}

var _ orcheo.RunService = (*RunService)(nil)

// NewRunService returns the run service of db.
func NewRunService(db *DB) *RunService { return &RunService{db: db} }

// runCols selects a run from "r" joined to its version "v".
const runCols = `r.id, r.workflow_id, r.version_id, v.version, r.queue, r.status, r.triggered_by,
	r.input, r.output, r.error, r.attempt, r.max_attempts, r.idempotency_key, r.scheduled_for,
	r.not_before, r.lease_until, r.worker_id, r.created_at, r.enqueued_at, r.started_at, r.completed_at,
	r.released_attempts, r.cancel_requested,
	CASE WHEN r.attempt - r.released_attempts = r.checkpoint_used THEN r.checkpoint END,
	r.parent_run_id, r.root_run_id, r.depth`

// runFrom is the FROM clause for runCols over relation rel (a table or CTE).
func runFrom(rel string) string {
	return rel + ` r JOIN workflow_versions v ON v.id = r.version_id`
}

func scanRun(row pgx.Row) (*orcheo.Run, error) {
	var (
		r              orcheo.Run
		status         string
		input, output  []byte
		checkpoint     []byte // only the claim that resumes the run sees one: see orcheo.Run.Checkpoint
		key, workerID  *string
		parent, root   *string
		scheduledFor   *time.Time
		notBefore      *time.Time
		leaseUntil     *time.Time
		enqueuedAt     *time.Time
		startedAt      *time.Time
		completedAt    *time.Time
		createdAtLocal time.Time
	)
	if err := row.Scan(&r.ID, &r.WorkflowID, &r.VersionID, &r.Version, &r.Queue, &status, &r.TriggeredBy,
		&input, &output, &r.Error, &r.Attempt, &r.MaxAttempts, &key, &scheduledFor,
		&notBefore, &leaseUntil, &workerID, &createdAtLocal, &enqueuedAt, &startedAt, &completedAt, &r.ReleasedAttempts, &r.CancelRequested, &checkpoint,
		&parent, &root, &r.Depth); err != nil {
		return nil, err
	}
	r.Status = orcheo.RunStatus(status)
	r.Input, r.Output, r.Checkpoint = input, output, checkpoint
	if key != nil {
		r.IdempotencyKey = *key
	}
	if workerID != nil {
		r.WorkerID = *workerID
	}
	if parent != nil && root != nil {
		r.ParentRunID, r.RootRunID = *parent, *root
	}
	r.CreatedAt = createdAtLocal.UTC()
	r.ScheduledFor, r.NotBefore, r.LeaseUntil = rules.TimePtr(scheduledFor), rules.TimePtr(notBefore), rules.TimePtr(leaseUntil)
	r.EnqueuedAt, r.StartedAt, r.CompletedAt = rules.TimePtr(enqueuedAt), rules.TimePtr(startedAt), rules.TimePtr(completedAt)
	return &r, nil
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullJSON(b []byte) *string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	return &s
}

// CreateRun stores run as pending in one statement, or returns the run that
// already holds its idempotency key (or cron slot) with created=false.
func (s *RunService) CreateRun(ctx context.Context, run *orcheo.Run) (*orcheo.Run, bool, error) {
	res := s.CreateRuns(ctx, []*orcheo.Run{run})[0]
	return res.Run, res.Created, res.Err
}

// findDuplicate explains why CreateRun inserted nothing: it returns the run
// holding in's idempotency key or cron slot, or ENOTFOUND for the version.
func (s *RunService) findDuplicate(ctx context.Context, in *orcheo.Run) (*orcheo.Run, error) {
	if in.IdempotencyKey != "" {
		r, err := scanRun(s.db.retryRow(ctx, retryIdempotent, `SELECT `+runCols+` FROM `+runFrom("runs")+`
			WHERE r.workflow_id = $1 AND r.triggered_by = $2 AND r.idempotency_key = $3`,
			in.WorkflowID, in.TriggeredBy, in.IdempotencyKey))
		if err == nil {
			return r, nil
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("create run: find by idempotency key: %w", err)
		}
	}
	if in.ScheduledFor != nil {
		r, err := scanRun(s.db.retryRow(ctx, retryIdempotent, `SELECT `+runCols+` FROM `+runFrom("runs")+`
			WHERE r.workflow_id = $1 AND r.scheduled_for = $2`, in.WorkflowID, in.ScheduledFor))
		if err == nil {
			return r, nil
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("create run: find by schedule slot: %w", err)
		}
	}
	var ok bool
	if err := s.db.retryRow(ctx, retryIdempotent, `SELECT EXISTS (SELECT 1 FROM workflow_versions WHERE id = $1 AND workflow_id = $2)`,
		in.VersionID, in.WorkflowID).Scan(&ok); err != nil {
		return nil, fmt.Errorf("create run: check version: %w", err)
	}
	if !ok {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "workflow version %q of workflow %q not found", in.VersionID, in.WorkflowID)
	}
	return nil, orcheo.Errorf(orcheo.ECONFLICT, "run conflicts with an existing run of workflow %s", in.WorkflowID)
}

// FindRunByID returns a run with its steps ordered by attempt and seq.
func (s *RunService) FindRunByID(ctx context.Context, id string) (*orcheo.Run, error) {
	if !orcheo.IsID(id) {
		return nil, rules.RunNotFound(id)
	}
	r, err := scanRun(s.db.retryRow(ctx, retryIdempotent, `SELECT `+runCols+` FROM `+runFrom("runs")+` WHERE r.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, rules.RunNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("find run %s: %w", id, err)
	}
	if r.Steps, err = s.findSteps(ctx, id); err != nil {
		return nil, err
	}
	return r, nil
}

// ClaimRun moves a due pending run to running: ClaimRuns with one id, so
// the claim's rules live in one statement.
func (s *RunService) ClaimRun(ctx context.Context, id, workerID string, leaseUntil time.Time) (*orcheo.Run, error) {
	claims, err := s.ClaimRuns(ctx, []string{id}, workerID, leaseUntil)
	if err != nil {
		return nil, fmt.Errorf("claim run %s: %w", id, err)
	}
	return claims[0].Run, claims[0].Err
}

// CompleteRun ends attempt of a running run: CompleteRuns with one item,
// whose update, steps and event are one statement.
func (s *RunService) CompleteRun(ctx context.Context, id string, attempt int, c orcheo.RunCompletion) (*orcheo.Run, error) {
	results, err := s.CompleteRuns(ctx, []orcheo.AttemptCompletion{{RunID: id, Attempt: attempt, Completion: c}})
	if err != nil {
		return nil, fmt.Errorf("complete run %s: %w", id, err)
	}
	return results[0].Run, results[0].Err
}

// CancelRun cancels a pending run, or flags a running one, with its event
// in one statement.
func (s *RunService) CancelRun(ctx context.Context, id string) (*orcheo.Run, error) {
	if !orcheo.IsID(id) {
		return nil, rules.RunNotFound(id)
	}
	now := s.db.now()
	r, err := scanRun(s.db.retryRow(ctx, retryUnsent, `WITH r AS (
			UPDATE runs SET status = CASE status WHEN 'pending' THEN 'cancelled' ELSE status END,
				completed_at = CASE status WHEN 'pending' THEN $2 ELSE completed_at END,
				lease_until = CASE status WHEN 'pending' THEN NULL ELSE lease_until END,
				cancel_requested = (status = 'running')
			WHERE id = $1 AND status IN ('pending', 'running')
			RETURNING *),
		ev AS (
			INSERT INTO run_events (run_id, at, kind, message)
			SELECT id, $2, CASE status WHEN 'cancelled' THEN $3::text ELSE $4::text END,
				CASE status WHEN 'cancelled' THEN $5::text ELSE $6::text END
			FROM r)
		SELECT `+runCols+` FROM `+runFrom("r"), id, now, rules.EventCancelled, rules.EventCancelRequested,
		rules.CancelledPendingMessage, rules.CancelRequestedMessage))
	if err == nil {
		return r, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("cancel run %s: %w", id, err)
	}
	status, err := s.statusOf(ctx, "cancel", id)
	if err != nil {
		return nil, err
	}
	return nil, rules.NotCancellable(id, status)
}

// MarkRunUnenqueued clears enqueued_at of a pending run. A run that is no
// longer pending needs no enqueue, so that is not an error; a missing run
// is ENOTFOUND.
func (s *RunService) MarkRunUnenqueued(ctx context.Context, id string) error {
	if !orcheo.IsID(id) {
		return rules.RunNotFound(id)
	}
	var found bool
	// The CTE updates; the outer query tells "not pending" from "missing"
	// in the same round trip.
	err := s.db.retryRow(ctx, retryIdempotent, `WITH u AS (
			UPDATE runs SET enqueued_at = NULL WHERE id = $1 AND status = 'pending' RETURNING id)
		SELECT EXISTS (SELECT 1 FROM u) OR EXISTS (SELECT 1 FROM runs WHERE id = $1)`, id).Scan(&found)
	if err != nil {
		return fmt.Errorf("mark run %s unenqueued: %w", id, err)
	}
	if !found {
		return rules.RunNotFound(id)
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
