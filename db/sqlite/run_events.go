package sqlite

import (
	"context"
	"fmt"

	"github.com/orcheo/orcheo/db/internal/rules"
)

// FindRunEvents returns the run_events of run id, oldest first: the audit
// trail each transition writes in its transaction. A run that does not
// exist has none. It is not part of orcheo.RunService; the conformance
// suite reads it to hold both backends to the same kinds and messages.
func (s *RunService) FindRunEvents(ctx context.Context, id string) ([]rules.Event, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT at, kind, message FROM run_events WHERE run_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("find events of run %s: %w", id, err)
	}
	defer rows.Close()
	var out []rules.Event
	for rows.Next() {
		var e rules.Event
		if err := rows.Scan(timeCol{&e.At}, &e.Kind, &e.Message); err != nil {
			return nil, fmt.Errorf("find events of run %s: %w", id, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find events of run %s: %w", id, err)
	}
	return out, nil
}
