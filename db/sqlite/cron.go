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

// CronService implements orcheo.CronService on SQLite.
type CronService struct{ db *DB }

var _ orcheo.CronService = (*CronService)(nil)

// NewCronService returns the cron service of db.
func NewCronService(db *DB) *CronService { return &CronService{db: db} }

const cronCols = `c.workflow_id, c.expression, c.timezone, c.allow_overlapping, c.start_at, c.end_at,
	c.catchup, c.catchup_limit, c.last_dispatched_at, c.updated_at`

func scanCron(row rowScanner) (*orcheo.CronTrigger, error) {
	var (
		t       orcheo.CronTrigger
		catchup string
	)
	if err := row.Scan(&t.WorkflowID, &t.Expression, &t.Timezone, &t.AllowOverlapping, nullTimeCol{&t.StartAt},
		nullTimeCol{&t.EndAt}, &catchup, &t.CatchupLimit, nullTimeCol{&t.LastDispatchedAt}, timeCol{&t.UpdatedAt}); err != nil {
		return nil, err
	}
	t.Catchup = orcheo.CatchupPolicy(catchup)
	return &t, nil
}

func cronNotFound(workflowID string) error {
	return orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q has no cron trigger", workflowID)
}

// FindCronTrigger returns the workflow's trigger or ENOTFOUND.
func (s *CronService) FindCronTrigger(ctx context.Context, workflowID string) (*orcheo.CronTrigger, error) {
	t, err := scanCron(s.db.read.QueryRowContext(ctx, `SELECT `+cronCols+` FROM cron_triggers c WHERE c.workflow_id = ?`, workflowID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cronNotFound(workflowID)
	} else if err != nil {
		return nil, fmt.Errorf("find cron trigger of workflow %s: %w", workflowID, err)
	}
	return t, nil
}

// FindCronTriggers returns the triggers of workflows not archived.
func (s *CronService) FindCronTriggers(ctx context.Context) ([]*orcheo.CronTrigger, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT `+cronCols+` FROM cron_triggers c
		JOIN workflows w ON w.id = c.workflow_id
		WHERE c.enabled AND w.archived_at IS NULL ORDER BY w.created_at, w.id`)
	if err != nil {
		return nil, fmt.Errorf("find cron triggers: %w", err)
	}
	defer rows.Close()
	var out []*orcheo.CronTrigger
	for rows.Next() {
		t, err := scanCron(rows)
		if err != nil {
			return nil, fmt.Errorf("find cron triggers: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
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
	now := s.db.now()
	var last *time.Time
	err := s.db.write.QueryRowContext(ctx, `INSERT INTO cron_triggers (workflow_id, enabled, expression, timezone,
			allow_overlapping, start_at, end_at, catchup, catchup_limit, updated_at)
		SELECT id, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 FROM workflows WHERE id = ?1
		ON CONFLICT (workflow_id) DO UPDATE SET enabled = 1, expression = excluded.expression,
			timezone = excluded.timezone, allow_overlapping = excluded.allow_overlapping,
			start_at = excluded.start_at, end_at = excluded.end_at, catchup = excluded.catchup,
			catchup_limit = excluded.catchup_limit, updated_at = excluded.updated_at
		RETURNING last_dispatched_at`,
		t.WorkflowID, t.Expression, t.Timezone, t.AllowOverlapping, tsPtr(t.StartAt), tsPtr(t.EndAt),
		string(t.Catchup), t.CatchupLimit, ts(now)).Scan(nullTimeCol{&last})
	if errors.Is(err, sql.ErrNoRows) {
		return orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q not found", t.WorkflowID)
	} else if err != nil {
		return fmt.Errorf("set cron trigger of workflow %s: %w", t.WorkflowID, FormatError(err))
	}
	t.UpdatedAt, t.LastDispatchedAt = now, last
	t.StartAt, t.EndAt = rules.TimePtr(t.StartAt), rules.TimePtr(t.EndAt)
	return nil
}

// DeleteCronTrigger removes the trigger or returns ENOTFOUND.
func (s *CronService) DeleteCronTrigger(ctx context.Context, workflowID string) error {
	res, err := s.db.write.ExecContext(ctx, `DELETE FROM cron_triggers WHERE workflow_id = ?`, workflowID)
	if err != nil {
		return fmt.Errorf("delete cron trigger of workflow %s: %w", workflowID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete cron trigger of workflow %s: %w", workflowID, err)
	} else if n == 0 {
		return cronNotFound(workflowID)
	}
	return nil
}

// MarkCronDispatched moves last_dispatched_at forward to slot, never back
// (stored times are fixed-width text, so text order is time order).
func (s *CronService) MarkCronDispatched(ctx context.Context, workflowID string, slot time.Time) error {
	if _, err := s.db.write.ExecContext(ctx, `UPDATE cron_triggers SET last_dispatched_at = ?2
		WHERE workflow_id = ?1 AND (last_dispatched_at IS NULL OR last_dispatched_at < ?2)`,
		workflowID, ts(slot)); err != nil {
		return fmt.Errorf("mark cron trigger of workflow %s dispatched: %w", workflowID, err)
	}
	return nil
}

// FindActiveCronRun returns the newest pending or running slot run before
// `before` (runs_active_slot_idx).
func (s *CronService) FindActiveCronRun(ctx context.Context, workflowID string, before time.Time) (*orcheo.Run, error) {
	r, err := scanRun(s.db.read.QueryRowContext(ctx, `SELECT `+runCols+runFrom+`
		WHERE r.workflow_id = ? AND r.scheduled_for IS NOT NULL AND r.scheduled_for < ?
			AND r.status IN ('pending', 'running')
		ORDER BY r.scheduled_for DESC LIMIT 1`, workflowID, ts(before)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("find active cron run of workflow %s: %w", workflowID, err)
	}
	return r, nil
}

// CreateSkippedRun inserts the slot's run as skipped with its event, or
// returns the run that already holds the slot. Writers are serialised, so
// the duplicate check cannot race.
func (s *CronService) CreateSkippedRun(ctx context.Context, run *orcheo.Run, reason string) (*orcheo.Run, bool, error) {
	now := s.db.now()
	in := *run
	if err := rules.NewRun(&in, now); err != nil {
		return nil, false, err
	}
	if in.ScheduledFor == nil {
		return nil, false, orcheo.Errorf(orcheo.EINVALID, "a skipped run needs scheduled_for")
	}
	reason = orcheo.SanitizeText(reason) // a report: kept, never refused
	in.Status, in.Error, in.EnqueuedAt, in.CompletedAt = orcheo.RunSkipped, reason, nil, &now
	var existing *orcheo.Run
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT version FROM workflow_versions WHERE id = ? AND workflow_id = ?`,
			in.VersionID, in.WorkflowID).Scan(&in.Version)
		if errors.Is(err, sql.ErrNoRows) {
			return orcheo.Errorf(orcheo.ENOTFOUND, "workflow version %q of workflow %q not found", in.VersionID, in.WorkflowID)
		} else if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO runs (id, workflow_id, version_id, queue, status, triggered_by,
				input, error, max_attempts, scheduled_for, created_at, completed_at)
			VALUES (?1, ?2, ?3, ?4, 'skipped', ?5, ?6, ?7, ?8, ?9, ?10, ?10)
			ON CONFLICT DO NOTHING`,
			in.ID, in.WorkflowID, in.VersionID, in.Queue, in.TriggeredBy, string(in.Input), reason, in.MaxAttempts,
			tsPtr(in.ScheduledFor), ts(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			existing, err = findDuplicate(ctx, tx, &in)
			return err
		}
		return addEvent(ctx, tx, in.ID, now, rules.EventSkipped, reason)
	})
	if err != nil {
		return nil, false, fmt.Errorf("create skipped run: %w", FormatError(err))
	}
	if existing != nil {
		return existing, false, nil
	}
	*run = in
	return run, true, nil
}
