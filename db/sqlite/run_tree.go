package sqlite

import (
	"context"
	"fmt"
)

// CountChildRuns counts the children of parentID and the runs of the tree
// under rootID, leaving out the run holding exceptKey. One index scan of
// the tree serves both counts: every child of parentID is in the tree.
func (s *RunService) CountChildRuns(ctx context.Context, parentID, rootID, exceptKey string) (children, tree int, err error) {
	err = s.db.read.QueryRowContext(ctx, `SELECT count(CASE WHEN parent_run_id = ? THEN 1 END), count(*)
		FROM runs WHERE root_run_id = ? AND idempotency_key IS NOT ?`,
		parentID, rootID, exceptKey).Scan(&children, &tree)
	if err != nil {
		return 0, 0, fmt.Errorf("count child runs: %w", FormatError(err))
	}
	return children, tree, nil
}
