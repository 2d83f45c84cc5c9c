package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// FindRunEvents returns the run_events of run id, oldest first: the audit
// trail each transition writes in its own statement. A run that does not
// exist has none. It is not part of orcheo.RunService; the conformance
// suite reads it to hold both backends to the same kinds and messages.
func (s *RunService) FindRunEvents(ctx context.Context, id string) ([]rules.Event, error) {
	if !orcheo.IsID(id) {
		return nil, nil
	}
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `SELECT at, kind, message FROM run_events WHERE run_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("find events of run %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rules.Event, error) {
		var e rules.Event
		err := row.Scan(&e.At, &e.Kind, &e.Message)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("find events of run %s: %w", id, err)
	}
	return out, nil
}
