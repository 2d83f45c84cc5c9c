package postgres

import (
	"context"
	"fmt"

	"github.com/orcheo/orcheo"
)

// CountChildRuns counts the children of parentID and the runs of the tree
// under rootID, leaving out the run holding exceptKey. One index scan of
// the tree serves both counts: every child of parentID is in the tree.
func (s *RunService) CountChildRuns(ctx context.Context, parentID, rootID, exceptKey string) (children, tree int, err error) {
	if !orcheo.IsID(parentID) || !orcheo.IsID(rootID) {
		return 0, 0, nil
	}
	err = s.db.retryRow(ctx, retryIdempotent, `SELECT count(*) FILTER (WHERE parent_run_id = $1), count(*)
		FROM runs WHERE root_run_id = $2 AND idempotency_key IS DISTINCT FROM $3`,
		parentID, rootID, exceptKey).Scan(&children, &tree)
	if err != nil {
		return 0, 0, fmt.Errorf("count child runs: %w", FormatError(err))
	}
	return children, tree, nil
}
