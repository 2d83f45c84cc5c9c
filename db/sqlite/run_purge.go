package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/orcheo/orcheo"
)

// purgeWhere selects the runs a purge may delete: of the statuses bound
// at ?1… (its placeholders are added after it), finished before ?N, and no
// child of a run still going (the parent may still poll it). The literal
// status list lets SQLite use runs_finished_completed_at_idx, whose
// predicate it is.
const purgeWhere = `r.status IN ('succeeded', 'failed', 'cancelled', 'skipped')
	AND r.completed_at < ?
	AND NOT EXISTS (SELECT 1 FROM runs p WHERE p.id = r.parent_run_id AND p.status IN ('pending', 'running'))
	AND r.status IN `

// DeleteFinishedRuns deletes one batch in one write transaction, so the
// write lock is held for one small batch at a time; steps and events go by
// ON DELETE CASCADE (foreign_keys is on for every connection).
func (s *RunService) DeleteFinishedRuns(ctx context.Context, p orcheo.RunPurge) (int, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	args := []any{ts(p.Before)}
	for _, st := range p.Statuses {
		args = append(args, string(st))
	}
	args = append(args, p.Limit)
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(p.Statuses)), ", ") + ")"
	if p.DryRun {
		var n int
		err := s.db.read.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM runs r WHERE `+purgeWhere+in+`
			LIMIT ?)`, args...).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("count finished runs: %w", FormatError(err))
		}
		return n, nil
	}
	var n int64
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE id IN (
				SELECT r.id FROM runs r WHERE `+purgeWhere+in+` ORDER BY r.completed_at LIMIT ?)`, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete finished runs: %w", FormatError(err))
	}
	return int(n), nil
}
