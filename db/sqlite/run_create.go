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

// CreateRuns stores runs in one write transaction (one commit). Each run
// has a savepoint of its own, so a run that fails (an unknown version, a
// row SQLite refuses) is rolled back alone and the others commit. Writers
// are serialised, so the duplicate checks cannot race; a key used twice in
// one call finds the run its first use stored.
func (s *RunService) CreateRuns(ctx context.Context, runs []*orcheo.Run) []orcheo.RunCreated {
	out := make([]orcheo.RunCreated, len(runs))
	now := s.db.now()
	ins := make([]*orcheo.Run, len(runs))
	pending := 0
	for i, run := range runs {
		in := *run
		if err := rules.NewRun(&in, now); err != nil {
			out[i].Err = err
			continue
		}
		ins[i] = &in
		pending++
	}
	if pending == 0 {
		return out
	}
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		for i, in := range ins {
			if in == nil {
				continue
			}
			existing, err := createInSavepoint(ctx, tx, in, now)
			switch {
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				out[i].Err = fmt.Errorf("create run: %w", FormatError(err))
			case existing != nil:
				out[i] = orcheo.RunCreated{Run: existing}
			default:
				out[i] = orcheo.RunCreated{Run: in, Created: true}
			}
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("create runs: %w", FormatError(err))
		for i := range out {
			if ins[i] != nil {
				out[i] = orcheo.RunCreated{Err: err}
			}
		}
		return out
	}
	for i, r := range out {
		if r.Err == nil && r.Created {
			*runs[i] = *r.Run
			out[i].Run = runs[i]
		}
	}
	return out
}

// createInSavepoint stores in (checked by rules.NewRun) inside tx, or
// returns the run holding its idempotency key or cron slot. On error
// everything it wrote is rolled back and tx stays usable.
func createInSavepoint(ctx context.Context, tx *sql.Tx, in *orcheo.Run, now time.Time) (*orcheo.Run, error) {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT create_run`); err != nil {
		return nil, err
	}
	existing, err := createOne(ctx, tx, in, now)
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO create_run`); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
	}
	if _, rerr := tx.ExecContext(ctx, `RELEASE create_run`); rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	return existing, err
}

// createOne is one run of CreateRuns: the version lookup, the insert and
// its "created" event, or the duplicate it ran into.
func createOne(ctx context.Context, tx *sql.Tx, in *orcheo.Run, now time.Time) (*orcheo.Run, error) {
	// A version whose definition sets retry.max_attempts gives the run
	// that budget.
	var defAttempts sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT version, json_extract(definition, '$.retry.max_attempts')
		FROM workflow_versions WHERE id = ? AND workflow_id = ?`,
		in.VersionID, in.WorkflowID).Scan(&in.Version, &defAttempts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "workflow version %q of workflow %q not found", in.VersionID, in.WorkflowID)
	} else if err != nil {
		return nil, err
	}
	if defAttempts.Valid && defAttempts.Int64 > 0 {
		in.MaxAttempts = int(defAttempts.Int64)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO runs (id, workflow_id, version_id, queue, status, triggered_by,
			input, max_attempts, idempotency_key, scheduled_for, not_before, created_at, enqueued_at,
			parent_run_id, root_run_id, depth)
		VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?14)
		ON CONFLICT DO NOTHING`,
		in.ID, in.WorkflowID, in.VersionID, in.Queue, in.TriggeredBy, string(in.Input), in.MaxAttempts,
		nullString(in.IdempotencyKey), tsPtr(in.ScheduledFor), tsPtr(in.NotBefore), ts(now),
		nullString(in.ParentRunID), nullString(in.RootRunID), in.Depth)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n == 0 {
		return findDuplicate(ctx, tx, in)
	}
	return nil, addEvent(ctx, tx, in.ID, now, rules.EventCreated, rules.CreatedMessage(in.TriggeredBy))
}
