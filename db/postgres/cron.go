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

// CronService implements orcheo.CronService on PostgreSQL.
type CronService struct{ db *DB }

var _ orcheo.CronService = (*CronService)(nil)

// NewCronService returns the cron service of db.
func NewCronService(db *DB) *CronService { return &CronService{db: db} }

const cronCols = `c.workflow_id, c.expression, c.timezone, c.allow_overlapping, c.start_at, c.end_at,
	c.catchup, c.catchup_limit, c.last_dispatched_at, c.updated_at`

func scanCron(row pgx.Row) (*orcheo.CronTrigger, error) {
	var (
		t       orcheo.CronTrigger
		catchup string
	)
	if err := row.Scan(&t.WorkflowID, &t.Expression, &t.Timezone, &t.AllowOverlapping, &t.StartAt, &t.EndAt,
		&catchup, &t.CatchupLimit, &t.LastDispatchedAt, &t.UpdatedAt); err != nil {
		return nil, err
	}
	t.Catchup = orcheo.CatchupPolicy(catchup)
	t.StartAt, t.EndAt, t.LastDispatchedAt = rules.TimePtr(t.StartAt), rules.TimePtr(t.EndAt), rules.TimePtr(t.LastDispatchedAt)
	t.UpdatedAt = t.UpdatedAt.UTC()
	return &t, nil
}

func cronNotFound(workflowID string) error {
	return orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q has no cron trigger", workflowID)
}

// FindCronTrigger returns the workflow's trigger or ENOTFOUND.
func (s *CronService) FindCronTrigger(ctx context.Context, workflowID string) (*orcheo.CronTrigger, error) {
	if !orcheo.IsID(workflowID) {
		return nil, cronNotFound(workflowID)
	}
	t, err := scanCron(s.db.retryRow(ctx, retryIdempotent, `SELECT `+cronCols+` FROM cron_triggers c WHERE c.workflow_id = $1`, workflowID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cronNotFound(workflowID)
	} else if err != nil {
		return nil, fmt.Errorf("find cron trigger of workflow %s: %w", workflowID, err)
	}
	return t, nil
}

// FindCronTriggers returns the triggers of workflows not archived.
func (s *CronService) FindCronTriggers(ctx context.Context) ([]*orcheo.CronTrigger, error) {
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `SELECT `+cronCols+` FROM cron_triggers c
		JOIN workflows w ON w.id = c.workflow_id
		WHERE c.enabled AND w.archived_at IS NULL ORDER BY w.created_at, w.id`)
	if err != nil {
		return nil, fmt.Errorf("find cron triggers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*orcheo.CronTrigger, error) { return scanCron(row) })
	if err != nil {
		return nil, fmt.Errorf("find cron triggers: %w", err)
	}
	return out, nil
}

// SetCronTrigger upserts the trigger in one statement that inserts nothing
// when the workflow does not exist.
func (s *CronService) SetCronTrigger(ctx context.Context, t *orcheo.CronTrigger) error {
	if t == nil {
		return orcheo.Errorf(orcheo.EINVALID, "cron trigger is missing")
	}
	if err := orcheo.CheckText("expression", t.Expression); err != nil {
		return err
	}
	if err := orcheo.CheckText("timezone", t.Timezone); err != nil {
		return err
	}
	if err := t.Validate(); err != nil {
		return err
	}
	if !orcheo.IsID(t.WorkflowID) {
		return orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q not found", t.WorkflowID)
	}
	now := s.db.now()
	var last *time.Time
	// An upsert of the same values: running it again is harmless.
	err := s.db.retryRow(ctx, retryIdempotent, `INSERT INTO cron_triggers (workflow_id, enabled, expression, timezone,
			allow_overlapping, start_at, end_at, catchup, catchup_limit, updated_at)
		SELECT id, true, $2, $3, $4, $5, $6, $7, $8, $9 FROM workflows WHERE id = $1
		ON CONFLICT (workflow_id) DO UPDATE SET enabled = true, expression = excluded.expression,
			timezone = excluded.timezone, allow_overlapping = excluded.allow_overlapping,
			start_at = excluded.start_at, end_at = excluded.end_at, catchup = excluded.catchup,
			catchup_limit = excluded.catchup_limit, updated_at = excluded.updated_at
		RETURNING last_dispatched_at`,
		t.WorkflowID, t.Expression, t.Timezone, t.AllowOverlapping, rules.TimePtr(t.StartAt), rules.TimePtr(t.EndAt),
		string(t.Catchup), t.CatchupLimit, now).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q not found", t.WorkflowID)
	} else if err != nil {
		return fmt.Errorf("set cron trigger of workflow %s: %w", t.WorkflowID, FormatError(err))
	}
	t.UpdatedAt, t.LastDispatchedAt = now, rules.TimePtr(last)
	t.StartAt, t.EndAt = rules.TimePtr(t.StartAt), rules.TimePtr(t.EndAt)
	return nil
}

// DeleteCronTrigger removes the trigger or returns ENOTFOUND.
func (s *CronService) DeleteCronTrigger(ctx context.Context, workflowID string) error {
	if !orcheo.IsID(workflowID) {
		return cronNotFound(workflowID)
	}
	// Run again after a commit, it would find nothing to delete: unsent only.
	tag, err := s.db.retryExec(ctx, retryUnsent, `DELETE FROM cron_triggers WHERE workflow_id = $1`, workflowID)
	if err != nil {
		return fmt.Errorf("delete cron trigger of workflow %s: %w", workflowID, err)
	}
	if tag.RowsAffected() == 0 {
		return cronNotFound(workflowID)
	}
	return nil
}

// MarkCronDispatched moves last_dispatched_at forward to slot, never back.
func (s *CronService) MarkCronDispatched(ctx context.Context, workflowID string, slot time.Time) error {
	if !orcheo.IsID(workflowID) {
		return nil
	}
	if _, err := s.db.retryExec(ctx, retryIdempotent, `UPDATE cron_triggers SET last_dispatched_at = $2
		WHERE workflow_id = $1 AND (last_dispatched_at IS NULL OR last_dispatched_at < $2)`,
		workflowID, rules.Time(slot)); err != nil {
		return fmt.Errorf("mark cron trigger of workflow %s dispatched: %w", workflowID, err)
	}
	return nil
}

// FindActiveCronRun returns the newest pending or running slot run before
// `before` (runs_active_slot_idx).
func (s *CronService) FindActiveCronRun(ctx context.Context, workflowID string, before time.Time) (*orcheo.Run, error) {
	if !orcheo.IsID(workflowID) {
		return nil, nil
	}
	r, err := scanRun(s.db.retryRow(ctx, retryIdempotent, `SELECT `+runCols+` FROM `+runFrom("runs")+`
		WHERE r.workflow_id = $1 AND r.scheduled_for IS NOT NULL AND r.scheduled_for < $2
			AND r.status IN ('pending', 'running')
		ORDER BY r.scheduled_for DESC LIMIT 1`, workflowID, rules.Time(before)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("find active cron run of workflow %s: %w", workflowID, err)
	}
	return r, nil
}

// CreateSkippedRun inserts the slot's run as skipped in one statement with
// its event, or returns the run that already holds the slot.
func (s *CronService) CreateSkippedRun(ctx context.Context, run *orcheo.Run, reason string) (*orcheo.Run, bool, error) {
	now := s.db.now()
	in := *run
	if err := rules.NewRun(&in, now); err != nil {
		return nil, false, err
	}
	if in.ScheduledFor == nil {
		return nil, false, orcheo.Errorf(orcheo.EINVALID, "a skipped run needs scheduled_for")
	}
	if !orcheo.IsID(in.WorkflowID) || !orcheo.IsID(in.VersionID) {
		return nil, false, orcheo.Errorf(orcheo.ENOTFOUND, "workflow version %q of workflow %q not found", in.VersionID, in.WorkflowID)
	}
	reason = orcheo.SanitizeText(reason) // a report: kept, never refused
	in.Status, in.Error, in.EnqueuedAt, in.CompletedAt = orcheo.RunSkipped, reason, nil, &now
	// The id is new (rules.NewRun): run again after a commit, the insert
	// finds its own row, which counts as created below.
	err := s.db.retryRow(ctx, retryIdempotent, `WITH ins AS (
			INSERT INTO runs (id, workflow_id, version_id, queue, status, triggered_by, input, error, max_attempts,
				scheduled_for, created_at, completed_at)
			SELECT $1, v.workflow_id, v.id, $4, 'skipped', $5, $6, $7, $8, $9, $10, $10
			FROM workflow_versions v WHERE v.id = $3 AND v.workflow_id = $2
			ON CONFLICT DO NOTHING
			RETURNING id, version_id),
		ev AS (
			INSERT INTO run_events (run_id, at, kind, message) SELECT id, $10, $11::text, $7 FROM ins)
		SELECT v.version FROM ins JOIN workflow_versions v ON v.id = ins.version_id`,
		in.ID, in.WorkflowID, in.VersionID, in.Queue, in.TriggeredBy, []byte(in.Input), reason, in.MaxAttempts,
		in.ScheduledFor, now, rules.EventSkipped).Scan(&in.Version)
	if err == nil {
		*run = in
		return run, true, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fmt.Errorf("create skipped run: %w", FormatError(err))
	}
	existing, err := (&RunService{db: s.db}).findDuplicate(ctx, &in)
	if err != nil {
		return nil, false, err
	}
	return existing, existing.ID == in.ID, nil
}
