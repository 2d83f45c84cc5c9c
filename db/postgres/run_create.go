package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// insertRunsSQL stores a batch of runs, with their "created" events, in one
// statement (one commit). The rows come from parallel arrays, one element
// per run, in the order of $1's ordinality.
//
// The JOIN on workflow_versions checks each version belongs to its
// workflow and yields the version number; a version whose definition sets
// retry.max_attempts gives the run that budget. ON CONFLICT DO NOTHING
// skips a row whose idempotency key or cron slot is taken, by a committed
// run, a concurrent insert (it waits for that one to commit) or an earlier
// row of the same batch, and a row whose own id exists (a retry of this
// statement whose first try committed). RETURNING names the rows stored;
// findExisting explains the others.
//
// insertRunSQL is its row form (rowForms in run_batch.go): $1-$14 the one
// run's values.
var (
	insertRunsSQL = insertSQL(`SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
			$7::int[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::uuid[], $12::uuid[], $13::int[],
			$14::text[]) WITH ORDINALITY`)
	insertRunSQL = insertSQL(`SELECT $1::uuid, $2::uuid, $3::uuid, $4::text, $5::text, $6::text,
			$7::int, $8::text, $9::timestamptz, $10::timestamptz, $11::uuid, $12::uuid, $13::int,
			$14::text, 1::bigint`)
)

// insertSQL is CreateRuns' statement over the runs that source yields, in
// insertRunsSQL's columns.
func insertSQL(source string) string {
	return `WITH input (id, workflow_id, version_id, queue, triggered_by, input,
			max_attempts, idempotency_key, scheduled_for, not_before, parent_run_id, root_run_id, depth,
			message, ord) AS (
		` + source + `),
	ins AS (
		INSERT INTO runs (id, workflow_id, version_id, queue, status, triggered_by, input, max_attempts,
			idempotency_key, scheduled_for, not_before, created_at, enqueued_at, parent_run_id, root_run_id, depth)
		SELECT u.id, v.workflow_id, v.id, u.queue, 'pending', u.triggered_by, u.input::jsonb,
			COALESCE((v.definition #>> '{retry,max_attempts}')::int, u.max_attempts), u.idempotency_key,
			u.scheduled_for, u.not_before, $15, $15, u.parent_run_id, u.root_run_id, u.depth
		FROM input u JOIN workflow_versions v ON v.id = u.version_id AND v.workflow_id = u.workflow_id
		ORDER BY u.ord
		ON CONFLICT DO NOTHING
		RETURNING id, version_id, max_attempts),
	ev AS (
		INSERT INTO run_events (run_id, at, kind, message)
		SELECT ins.id, $15, $16::text, u.message FROM ins JOIN input u ON u.id = ins.id)
	SELECT ins.id, v.version, ins.max_attempts FROM ins JOIN workflow_versions v ON v.id = ins.version_id`
}

// CreateRuns stores runs in one statement, or explains with one more query
// each run it did not store. A statement the database refuses (a row it
// cannot store) is retried row by row, so only that row's caller gets the
// error; a database it cannot reach fails every run.
func (s *RunService) CreateRuns(ctx context.Context, runs []*orcheo.Run) []orcheo.RunCreated {
	out := make([]orcheo.RunCreated, len(runs))
	now := s.db.now()
	ins := make([]*orcheo.Run, 0, len(runs))
	idx := make([]int, 0, len(runs)) // idx[j] is the index in runs of ins[j]
	for i, run := range runs {
		in := *run
		if err := rules.NewRun(&in, now); err != nil {
			out[i].Err = err
			continue
		}
		if !orcheo.IsID(in.WorkflowID) || !orcheo.IsID(in.VersionID) {
			out[i].Err = versionNotFound(&in)
			continue
		}
		ins = append(ins, &in)
		idx = append(idx, i)
	}
	if len(ins) == 0 {
		return out
	}
	res, err := s.createRunsRetried(ctx, ins, now)
	if err != nil && len(ins) > 1 && !isUnavailable(err) && ctx.Err() == nil {
		// One row the database refused fails the whole statement: store
		// the rows one by one, so that row alone gets its error.
		res = make([]orcheo.RunCreated, len(ins))
		for j, in := range ins {
			one, err := s.createRunsRetried(ctx, []*orcheo.Run{in}, now)
			if err != nil {
				res[j].Err = err
			} else {
				res[j] = one[0]
			}
		}
	} else if err != nil {
		res = make([]orcheo.RunCreated, len(ins))
		for j := range res {
			res[j].Err = err
		}
	}
	for j, r := range res {
		i := idx[j]
		if r.Err == nil && r.Created {
			*runs[i] = *r.Run
			r.Run = runs[i]
		}
		out[i] = r
	}
	return out
}

// createRunsRetried is createRuns run again on a fresh connection when the
// connection failed, even after a first try that may have committed: the
// run ids are the application's, so the retry finds them stored and
// reports them created (findExisting), and stores nothing twice.
func (s *RunService) createRunsRetried(ctx context.Context, ins []*orcheo.Run, now time.Time) ([]orcheo.RunCreated, error) {
	var res []orcheo.RunCreated
	err := s.db.retry(ctx, retryIdempotent, func() (err error) {
		res, err = s.createRuns(ctx, ins, now)
		return err
	})
	return res, err
}

// createRuns inserts ins (already checked by rules.NewRun) and returns each
// one's outcome; err is the statement's failure, for all of them.
func (s *RunService) createRuns(ctx context.Context, ins []*orcheo.Run, now time.Time) ([]orcheo.RunCreated, error) {
	n := len(ins)
	var (
		ids, workflows, versions, queues, triggers, inputs, messages = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		maxAttempts, depths  = make([]int32, n), make([]int32, n)
		keys, parents, roots = make([]*string, n), make([]*string, n), make([]*string, n)
		slots, notBefore     = make([]*time.Time, n), make([]*time.Time, n)
	)
	byID := make(map[string]int, n)
	for j, in := range ins {
		ids[j], workflows[j], versions[j], queues[j], triggers[j] = in.ID, in.WorkflowID, in.VersionID, in.Queue, in.TriggeredBy
		inputs[j], messages[j] = string(in.Input), rules.CreatedMessage(in.TriggeredBy)
		maxAttempts[j], depths[j] = int32(in.MaxAttempts), int32(in.Depth)
		keys[j], parents[j], roots[j] = nullString(in.IdempotencyKey), nullString(in.ParentRunID), nullString(in.RootRunID)
		slots[j], notBefore[j] = in.ScheduledFor, in.NotBefore
		byID[in.ID] = j
	}
	stmt, args := insertRunsSQL, []any{ids, workflows, versions, queues, triggers, inputs,
		maxAttempts, keys, slots, notBefore, parents, roots, depths, messages}
	if n == 1 && !s.arrays {
		// rowForms
		stmt, args = insertRunSQL, []any{ids[0], workflows[0], versions[0], queues[0], triggers[0], inputs[0],
			maxAttempts[0], keys[0], slots[0], notBefore[0], parents[0], roots[0], depths[0], messages[0]}
	}
	rows, err := s.db.pool.Query(ctx, stmt, append(args, now, rules.EventCreated)...)
	if err != nil {
		return nil, fmt.Errorf("create runs: %w", FormatError(err))
	}
	out := make([]orcheo.RunCreated, n)
	stored := 0
	for rows.Next() {
		var (
			id      string
			version int
			max     int
		)
		if err := rows.Scan(&id, &version, &max); err != nil {
			rows.Close()
			return nil, fmt.Errorf("create runs: %w", err)
		}
		j, ok := byID[id]
		if !ok {
			continue
		}
		run := *ins[j]
		run.Version, run.MaxAttempts = version, max
		out[j] = orcheo.RunCreated{Run: &run, Created: true}
		stored++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("create runs: %w", FormatError(err))
	}
	if stored == n {
		return out, nil
	}
	var rest []int
	for j := range out {
		if out[j].Run == nil {
			rest = append(rest, j)
		}
	}
	if err := s.findExisting(ctx, ins, rest, out); err != nil {
		return nil, err
	}
	return out, nil
}

// findExisting explains why the rows rest of ins were not stored, in one
// query: the run that holds the row's own id (the statement was retried
// after its first try committed: created after all), its idempotency key or
// its cron slot (created=false). A row with none of these names a version
// that does not exist (ENOTFOUND).
func (s *RunService) findExisting(ctx context.Context, ins []*orcheo.Run, rest []int, out []orcheo.RunCreated) error {
	var (
		ids                       []string
		keyWorkflows, keyTriggers []string
		keys                      []string
		slotWorkflows             []string
		slots                     []time.Time
	)
	for _, j := range rest {
		in := ins[j]
		ids = append(ids, in.ID)
		if in.IdempotencyKey != "" {
			keyWorkflows, keyTriggers, keys = append(keyWorkflows, in.WorkflowID), append(keyTriggers, in.TriggeredBy), append(keys, in.IdempotencyKey)
		}
		if in.ScheduledFor != nil {
			slotWorkflows, slots = append(slotWorkflows, in.WorkflowID), append(slots, *in.ScheduledFor)
		}
	}
	// Three index lookups: the primary key, the idempotency key's unique
	// index and the cron slot's.
	rows, err := s.db.pool.Query(ctx, `SELECT `+runCols+` FROM `+runFrom("runs")+` WHERE r.id = ANY($1::uuid[])
		UNION ALL
		SELECT `+runCols+` FROM unnest($2::uuid[], $3::text[], $4::text[]) AS k(workflow_id, triggered_by, idempotency_key)
			JOIN runs r ON r.workflow_id = k.workflow_id AND r.triggered_by = k.triggered_by AND r.idempotency_key = k.idempotency_key
			JOIN workflow_versions v ON v.id = r.version_id
		UNION ALL
		SELECT `+runCols+` FROM unnest($5::uuid[], $6::timestamptz[]) AS k(workflow_id, scheduled_for)
			JOIN runs r ON r.workflow_id = k.workflow_id AND r.scheduled_for = k.scheduled_for
			JOIN workflow_versions v ON v.id = r.version_id`,
		ids, keyWorkflows, keyTriggers, keys, slotWorkflows, slots)
	if err != nil {
		return fmt.Errorf("create runs: find existing: %w", FormatError(err))
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*orcheo.Run, error) { return scanRun(row) })
	if err != nil {
		return fmt.Errorf("create runs: find existing: %w", FormatError(err))
	}
	for _, j := range rest {
		in := ins[j]
		if r := matchExisting(in, found); r != nil {
			out[j] = orcheo.RunCreated{Run: r, Created: r.ID == in.ID}
			continue
		}
		ok, err := s.versionExists(ctx, in)
		if err != nil {
			return err
		}
		if !ok {
			out[j].Err = versionNotFound(in)
		} else {
			// The run holding its key went away meanwhile (its workflow
			// was deleted).
			out[j].Err = orcheo.Errorf(orcheo.ECONFLICT, "run conflicts with an existing run of workflow %s", in.WorkflowID)
		}
	}
	return nil
}

// matchExisting returns the run among found that kept in out: its own id
// first, then its idempotency key, then its cron slot.
func matchExisting(in *orcheo.Run, found []*orcheo.Run) *orcheo.Run {
	for _, r := range found {
		if r.ID == in.ID {
			return r
		}
	}
	if in.IdempotencyKey != "" {
		for _, r := range found {
			if r.WorkflowID == in.WorkflowID && r.TriggeredBy == in.TriggeredBy && r.IdempotencyKey == in.IdempotencyKey {
				return r
			}
		}
	}
	if in.ScheduledFor != nil {
		for _, r := range found {
			if r.WorkflowID == in.WorkflowID && r.ScheduledFor != nil && r.ScheduledFor.Equal(*in.ScheduledFor) {
				return r
			}
		}
	}
	return nil
}

// versionExists reports whether in's version is one of its workflow's.
func (s *RunService) versionExists(ctx context.Context, in *orcheo.Run) (bool, error) {
	var ok bool
	if err := s.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM workflow_versions WHERE id = $1 AND workflow_id = $2)`,
		in.VersionID, in.WorkflowID).Scan(&ok); err != nil {
		return false, fmt.Errorf("create runs: check version: %w", FormatError(err))
	}
	return ok, nil
}

func versionNotFound(in *orcheo.Run) error {
	return orcheo.Errorf(orcheo.ENOTFOUND, "workflow version %q of workflow %q not found", in.VersionID, in.WorkflowID)
}
