package postgres

import (
	"context"
	"fmt"

	"github.com/orcheo/orcheo"
)

// purgeWhere selects the runs a purge may delete: $1 statuses, finished
// before $2, and no child of a run still going (the parent may still poll
// it). The literal status list lets the planner use
// runs_finished_completed_at_idx, whose predicate it is; $1 narrows it.
const purgeWhere = `r.status IN ('succeeded', 'failed', 'cancelled', 'skipped')
	AND r.status = ANY($1::text[]) AND r.completed_at < $2
	AND NOT EXISTS (SELECT 1 FROM runs p WHERE p.id = r.parent_run_id AND p.status IN ('pending', 'running'))`

// DeleteFinishedRuns deletes one batch in one statement: the batch's rows
// are locked FOR UPDATE SKIP LOCKED, oldest first, so the purge never waits
// for a run another transaction holds (a manual retry of it, say: the
// retry wins and the run is kept, or it waits for this short statement and
// then finds no run). Steps and events go by ON DELETE CASCADE, through
// their run_id indexes. It is retried only while nothing reached the
// server: run again after a commit it would delete a second batch and
// report one. A dry run is a count, retried freely.
func (s *RunService) DeleteFinishedRuns(ctx context.Context, p orcheo.RunPurge) (int, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	statuses := make([]string, len(p.Statuses))
	for i, st := range p.Statuses {
		statuses[i] = string(st)
	}
	if p.DryRun {
		var n int
		err := s.db.retryRow(ctx, retryIdempotent, `SELECT count(*) FROM (SELECT 1 FROM runs r WHERE `+purgeWhere+`
			LIMIT $3) AS c`, statuses, p.Before, p.Limit).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("count finished runs: %w", FormatError(err))
		}
		return n, nil
	}
	tag, err := s.db.retryExec(ctx, retryUnsent, `DELETE FROM runs WHERE id IN (
			SELECT r.id FROM runs r WHERE `+purgeWhere+`
			ORDER BY r.completed_at LIMIT $3 FOR UPDATE OF r SKIP LOCKED)`, statuses, p.Before, p.Limit)
	if err != nil {
		return 0, fmt.Errorf("delete finished runs: %w", FormatError(err))
	}
	return int(tag.RowsAffected()), nil
}
