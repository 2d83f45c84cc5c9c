package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// ClaimRuns claims the due pending runs among ids in one IMMEDIATE
// transaction: one conditional UPDATE and one event per id, and one commit
// for the batch (on SQLite the commit is the cost). An id the UPDATE does
// not match is explained in the same transaction; it fails alone.
func (s *RunService) ClaimRuns(ctx context.Context, ids []string, workerID string, leaseUntil time.Time) ([]orcheo.RunClaim, error) {
	claims := make([]orcheo.RunClaim, len(ids))
	if len(ids) == 0 {
		return claims, nil
	}
	now := s.db.now()
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		for i, id := range ids {
			claims[i] = orcheo.RunClaim{ID: id}
			r, err := claimRun(ctx, tx, id, workerID, leaseUntil, now)
			if code := orcheo.ErrorCode(err); code == orcheo.ECONFLICT || code == orcheo.ENOTFOUND {
				claims[i].Err = err
				continue
			} else if err != nil {
				return err
			}
			claims[i].Run = r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim %d runs: %w", len(ids), err)
	}
	return claims, nil
}

// claimRun is one id of ClaimRuns, inside its transaction. A second claim
// of an id in one batch finds it running: ECONFLICT.
func claimRun(ctx context.Context, tx *sql.Tx, id, workerID string, leaseUntil, now time.Time) (*orcheo.Run, error) {
	var attempt int
	err := tx.QueryRowContext(ctx, `UPDATE runs SET status = 'running', attempt = attempt + 1, worker_id = ?2,
			lease_until = ?3, started_at = COALESCE(started_at, ?4)
		WHERE id = ?1 AND status = 'pending' AND (not_before IS NULL OR not_before <= ?4)
		RETURNING attempt`, id, nullString(workerID), ts(leaseUntil), ts(now)).Scan(&attempt)
	if errors.Is(err, sql.ErrNoRows) {
		var (
			status    string
			notBefore *time.Time
		)
		err := tx.QueryRowContext(ctx, `SELECT status, not_before FROM runs WHERE id = ?`, id).
			Scan(&status, nullTimeCol{&notBefore})
		if errors.Is(err, sql.ErrNoRows) {
			return nil, rules.RunNotFound(id)
		} else if err != nil {
			return nil, err
		}
		return nil, rules.NotPending(id, orcheo.RunStatus(status), notBefore, now)
	} else if err != nil {
		return nil, err
	}
	if err := addEvent(ctx, tx, id, now, rules.EventClaimed, fmt.Sprintf("attempt %d by %s", attempt, workerID)); err != nil {
		return nil, err
	}
	return findRun(ctx, tx, id)
}

// CompleteRuns ends many attempts in one IMMEDIATE transaction: per item
// the fenced UPDATE (CompleteRun's rule: a failed attempt with a RetryAt
// goes back to pending while attempts are left and no cancel was
// requested; a requested cancel turns any end but success into
// cancelled); then the steps of all of them in multi-row INSERTs, then
// their events. An item whose UPDATE matches nothing writes nothing and
// fails alone; one commit for the batch.
func (s *RunService) CompleteRuns(ctx context.Context, cs []orcheo.AttemptCompletion) ([]orcheo.RunCompleted, error) {
	cs = slices.Clone(cs) // the sanitised errors below are ours, not the caller's
	results := make([]orcheo.RunCompleted, len(cs))
	type item struct {
		index   int
		message string
		steps   []*orcheo.RunStep
	}
	items := make([]item, 0, len(cs))
	for i, c := range cs {
		steps, err := rules.Completion(c.RunID, c.Attempt, c.Completion)
		if err != nil {
			results[i].Err = err
			continue
		}
		cs[i].Completion.Error = orcheo.SanitizeText(c.Completion.Error)
		items = append(items, item{index: i, steps: steps,
			message: rules.CompletionMessage(c.Attempt, c.Completion.Status, cs[i].Completion.Error)})
	}
	if len(items) == 0 {
		return results, nil
	}
	now := s.db.now()
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		var (
			kept  = items[:0:0]
			steps []*orcheo.RunStep
		)
		for _, it := range items {
			c := cs[it.index]
			err := completeRun(ctx, tx, c, now)
			if code := orcheo.ErrorCode(err); code == orcheo.ECONFLICT || code == orcheo.ENOTFOUND {
				results[it.index].Err = err
				continue
			} else if err != nil {
				return err
			}
			kept = append(kept, it)
			steps = append(steps, it.steps...)
		}
		if err := insertSteps(ctx, tx, steps); err != nil {
			return err
		}
		for _, it := range kept {
			r, err := findRun(ctx, tx, cs[it.index].RunID)
			if err != nil {
				return err
			}
			if err := addEvent(ctx, tx, r.ID, now, rules.CompletionEvent(r.Status), it.message); err != nil {
				return err
			}
			r.Steps = it.steps
			results[it.index].Run = r
		}
		return nil
	})
	if err != nil {
		// Nothing was written: no item has a run to show.
		for i := range results {
			results[i].Run = nil
		}
		return nil, fmt.Errorf("complete %d runs: %w", len(items), FormatError(err))
	}
	return results, nil
}

// completeRun is the fenced UPDATE of one CompleteRuns item, inside its
// transaction; ECONFLICT or ENOTFOUND if the run is not running that
// attempt (a second completion of one attempt in a batch finds it ended).
func completeRun(ctx context.Context, tx *sql.Tx, ac orcheo.AttemptCompletion, now time.Time) error {
	c := ac.Completion
	res, err := tx.ExecContext(ctx, `UPDATE runs SET
			status = CASE WHEN `+retryCond+` THEN 'pending'
				WHEN ?1 <> 'succeeded' AND cancel_requested THEN 'cancelled' ELSE ?1 END,
			output = ?2, error = ?3, lease_until = NULL,
			completed_at = CASE WHEN `+retryCond+` THEN NULL ELSE ?4 END,
			not_before = CASE WHEN `+retryCond+` THEN ?7 ELSE not_before END,
			enqueued_at = CASE WHEN `+retryCond+` THEN ?4 ELSE enqueued_at END
		WHERE id = ?5 AND status = 'running' AND attempt = ?6`,
		string(c.Status), nullJSON(c.Output), c.Error, ts(now), ac.RunID, ac.Attempt, tsPtr(c.RetryAt), rules.WantsRetry(c))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return attemptConflict(ctx, tx, ac.RunID, ac.Attempt)
	}
	return nil
}
