package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// stepCols are the run_steps columns every step query reads and writes.
const stepCols = `run_id, attempt, seq, node, node_type, status, node_attempt, input, output, error, started_at, completed_at`

// stepUpsert lets a later write of a step (its end, or CompleteRun's final
// list) replace an earlier one (its start).
const stepUpsert = ` ON CONFLICT (run_id, attempt, seq) DO UPDATE SET node = excluded.node,
	node_type = excluded.node_type, status = excluded.status, node_attempt = excluded.node_attempt,
	input = excluded.input, output = excluded.output, error = excluded.error,
	started_at = excluded.started_at, completed_at = excluded.completed_at`

// SaveRunStep upserts one step of a running run. The check and the write
// share one IMMEDIATE transaction on the single write connection, so no
// completion or takeover can come between them.
func (s *RunService) SaveRunStep(ctx context.Context, step *orcheo.RunStep) error {
	st, err := rules.Step(step)
	if err != nil {
		return err
	}
	err = s.db.withTx(ctx, func(tx *sql.Tx) error {
		var (
			status  string
			current int
		)
		err := tx.QueryRowContext(ctx, `SELECT status, attempt FROM runs WHERE id = ?`, st.RunID).Scan(&status, &current)
		if errors.Is(err, sql.ErrNoRows) {
			return rules.RunNotFound(st.RunID)
		} else if err != nil {
			return err
		}
		if orcheo.RunStatus(status) != orcheo.RunRunning || current != st.Attempt {
			return rules.NotRunningAttempt(st.RunID, st.Attempt, orcheo.RunStatus(status), current)
		}
		return insertSteps(ctx, tx, []*orcheo.RunStep{st})
	})
	if err != nil {
		return fmt.Errorf("save step %d of run %s: %w", st.Seq, st.RunID, FormatError(err))
	}
	return nil
}

// stepsPerInsert keeps a multi-row INSERT under SQLite's bound-parameter
// limit (12 columns per row).
const stepsPerInsert = 400

// insertSteps upserts steps in multi-row INSERTs.
func insertSteps(ctx context.Context, tx *sql.Tx, steps []*orcheo.RunStep) error {
	for len(steps) > 0 {
		batch := steps[:min(len(steps), stepsPerInsert)]
		steps = steps[len(batch):]
		var sb strings.Builder
		sb.WriteString(`INSERT INTO run_steps (` + stepCols + `) VALUES `)
		args := make([]any, 0, len(batch)*12)
		for i, st := range batch {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, st.RunID, st.Attempt, st.Seq, st.Node, st.NodeType, string(st.Status), st.NodeAttempt,
				nullJSON(st.Input), nullJSON(st.Output), st.Error, ts(st.StartedAt), tsPtr(st.CompletedAt))
		}
		sb.WriteString(stepUpsert)
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			return fmt.Errorf("insert steps: %w", err)
		}
	}
	return nil
}

// findSteps returns a run's steps ordered by attempt and seq.
func findSteps(ctx context.Context, q querier, id string) ([]*orcheo.RunStep, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+stepCols+` FROM run_steps WHERE run_id = ? ORDER BY attempt, seq`, id)
	if err != nil {
		return nil, fmt.Errorf("find steps of run %s: %w", id, err)
	}
	defer rows.Close()
	var steps []*orcheo.RunStep
	for rows.Next() {
		var (
			st            orcheo.RunStep
			status        string
			input, output []byte
		)
		if err := rows.Scan(&st.RunID, &st.Attempt, &st.Seq, &st.Node, &st.NodeType, &status, &st.NodeAttempt,
			&input, &output, &st.Error, timeCol{&st.StartedAt}, nullTimeCol{&st.CompletedAt}); err != nil {
			return nil, fmt.Errorf("find steps of run %s: %w", id, err)
		}
		st.Status, st.Input, st.Output = orcheo.StepStatus(status), input, output
		steps = append(steps, &st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find steps of run %s: %w", id, err)
	}
	return steps, nil
}
