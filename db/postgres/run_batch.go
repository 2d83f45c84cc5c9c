package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// ClaimRuns claims the due pending runs among ids in one statement: an
// index scan of id = ANY locks the rows in id order (so two batches sharing
// ids wait for each other instead of deadlocking), moves them to running
// and writes their "claimed" events. Only when some id was not claimed does a
// second query tell ENOTFOUND from ECONFLICT for those ids.
func (s *RunService) ClaimRuns(ctx context.Context, ids []string, workerID string, leaseUntil time.Time) ([]orcheo.RunClaim, error) {
	claims := make([]orcheo.RunClaim, len(ids))
	first := make(map[string]int, len(ids)) // canonical id → index of its first entry
	valid := make([]string, 0, len(ids))
	for i, id := range ids {
		claims[i].ID = id
		if !orcheo.IsID(id) {
			claims[i].Err = rules.RunNotFound(id)
			continue
		}
		key := strings.ToLower(id)
		if _, dup := first[key]; !dup {
			first[key] = i
			valid = append(valid, key)
		}
	}
	if len(valid) == 0 {
		return claims, nil
	}
	slices.Sort(valid) // the order the rows are locked in (see ClaimRuns)
	now := s.db.now()
	// retryUnsent: run again after a cut only if it never reached the
	// server, since a second run after a commit would find the runs
	// running and report conflicts (retry.go).
	stmt, idArg := claimRunsSQL, any(valid)
	if len(valid) == 1 && !s.arrays {
		stmt, idArg = claimRunSQL, valid[0] // rowForms
	}
	rows, err := s.db.retryQuery(ctx, retryUnsent, stmt,
		idArg, nullString(workerID), rules.Time(leaseUntil), now, rules.EventClaimed)
	if err != nil {
		return nil, fmt.Errorf("claim %d runs: %w", len(valid), err)
	}
	claimed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*orcheo.Run, error) { return scanRun(row) })
	if err != nil {
		return nil, fmt.Errorf("claim %d runs: %w", len(valid), err)
	}
	byID := make(map[string]*orcheo.Run, len(claimed))
	for _, r := range claimed {
		byID[r.ID] = r
	}
	var why map[string]error
	if len(claimed) < len(valid) {
		if why, err = s.whyNotClaimed(ctx, valid, byID, now); err != nil {
			return nil, err
		}
	}
	for i := range claims {
		if claims[i].Err != nil {
			continue
		}
		key := strings.ToLower(claims[i].ID)
		switch r := byID[key]; {
		case first[key] != i && r != nil:
			// The first entry claimed it: a second claim finds it running.
			claims[i].Err = rules.NotPending(claims[i].ID, orcheo.RunRunning, nil, now)
		case r != nil:
			claims[i].Run = r
		default:
			claims[i].Err = why[key]
		}
	}
	return claims, nil
}

// rowForms: a batch of one (the common case below saturation, where
// nothing queues behind a write) runs its batch statement in its row form,
// the same statement with the one row's values as scalar parameters
// instead of unnest over arrays of one, so PostgreSQL plans and executes
// no function scan or join over the arrays. The statement text differs
// only in where its rows come from; the fencing, ON CONFLICT and events
// are the same SQL. RunService.arrays turns the row forms off (benchmarks
// compare the two: BenchmarkStatementForms).

// claimRunsSQL is ClaimRuns' statement: $1 the ids, $2 the worker, $3 the
// lease's end, $4 now, $5 the claimed event's kind. claimRunSQL is its
// row form, $1 the one id.
var (
	claimRunsSQL = claimSQL(`id = ANY($1::uuid[])`)
	claimRunSQL  = claimSQL(`id = $1::uuid`)
)

// claimSQL is ClaimRuns' statement over the runs that match ids.
func claimSQL(ids string) string {
	return `WITH r AS (
			UPDATE runs SET status = 'running', attempt = attempt + 1, worker_id = $2,
				lease_until = $3, started_at = COALESCE(started_at, $4)
			WHERE ` + ids + ` AND status = 'pending' AND (not_before IS NULL OR not_before <= $4)
			RETURNING *),
		ev AS (
			INSERT INTO run_events (run_id, at, kind, message)
			SELECT id, $4, $5::text, format('attempt %s by %s', attempt, $2::text) FROM r)
		SELECT ` + runCols + ` FROM ` + runFrom("r")
}

// whyNotClaimed explains, by id, why the ids of valid missing from claimed
// were not claimed: ENOTFOUND, or ClaimRun's ECONFLICT (not pending, not
// due yet).
func (s *RunService) whyNotClaimed(ctx context.Context, valid []string, claimed map[string]*orcheo.Run, now time.Time) (map[string]error, error) {
	missing := make([]string, 0, len(valid)-len(claimed))
	for _, id := range valid {
		if claimed[id] == nil {
			missing = append(missing, id)
		}
	}
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `SELECT id::text, status, not_before FROM runs WHERE id = ANY($1::uuid[])`, missing)
	if err != nil {
		return nil, fmt.Errorf("claim runs: explain conflicts: %w", err)
	}
	why := make(map[string]error, len(missing))
	var (
		id, status string
		notBefore  *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &status, &notBefore}, func() error {
		why[id] = rules.NotPending(id, orcheo.RunStatus(status), notBefore, now)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim runs: explain conflicts: %w", err)
	}
	for _, id := range missing {
		if why[id] == nil {
			why[id] = rules.RunNotFound(id)
		}
	}
	return why, nil
}

// CompleteRuns ends many attempts: each round (a set of distinct run ids;
// almost always the whole batch) is one statement that updates the runs
// fenced on (running, attempt), upserts all their steps from arrays and
// writes their events, so a batch costs one round trip. A run named twice
// in a batch (two attempts of it) needs a second round, and then the rounds
// share one transaction. A connection cut is retried only when nothing can
// have reached the server (retryUnsent).
func (s *RunService) CompleteRuns(ctx context.Context, cs []orcheo.AttemptCompletion) ([]orcheo.RunCompleted, error) {
	results := make([]orcheo.RunCompleted, len(cs))
	items := make([]completeItem, 0, len(cs))
	for i, c := range cs {
		steps, err := rules.Completion(c.RunID, c.Attempt, c.Completion)
		if err == nil && !orcheo.IsID(c.RunID) {
			err = rules.RunNotFound(c.RunID)
		}
		if err != nil {
			results[i].Err = err
			continue
		}
		comp := c.Completion
		comp.Error = orcheo.SanitizeText(comp.Error)
		items = append(items, completeItem{index: i, id: strings.ToLower(c.RunID), attempt: c.Attempt, c: comp, steps: steps})
	}
	rounds := completeRounds(items)
	if len(rounds) == 0 {
		return results, nil
	}
	now := s.db.now()
	if len(rounds) == 1 {
		// retryUnsent: a second run after a commit would find the runs
		// ended and report conflicts (retry.go).
		stmt := retrying{s.db, retryUnsent}
		if err := s.completeRound(ctx, stmt, retrying{s.db, retryIdempotent}, rounds[0], now, results); err != nil {
			return nil, err
		}
		return results, nil
	}
	err := s.db.retryTx(ctx, retryUnsent, func(tx pgx.Tx) error {
		for _, round := range rounds {
			if err := s.completeRound(ctx, tx, tx, round, now, results); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("complete runs: %w", FormatError(err))
	}
	return results, nil
}

// completeItem is one valid completion of a CompleteRuns batch.
type completeItem struct {
	index   int // in the caller's slice
	id      string
	attempt int
	c       orcheo.RunCompletion
	steps   []*orcheo.RunStep
}

// completeRounds splits items into rounds of distinct run ids, in order.
func completeRounds(items []completeItem) [][]completeItem {
	var rounds [][]completeItem
	seen := []map[string]bool{}
	for _, it := range items {
		r := 0
		for r < len(rounds) && seen[r][it.id] {
			r++
		}
		if r == len(rounds) {
			rounds, seen = append(rounds, nil), append(seen, map[string]bool{})
		}
		rounds[r], seen[r][it.id] = append(rounds[r], it), true
	}
	return rounds
}

// querier is what a round runs on: the pool under a retry policy, or the
// batch's transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// retrying is the pool as a querier, each query under policy.
type retrying struct {
	db     *DB
	policy retryPolicy
}

func (r retrying) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return r.db.retryQuery(ctx, r.policy, sql, args...)
}

// completeRound writes one round of distinct runs in one statement on q and
// fills in their results, explaining on explain those that matched nothing;
// each result is set whole, so a round run again overwrites a first try's. retryCond in it is CompleteRun's retry rule
// (rules.WantsRetry, no cancel requested, rules.AttemptsLeft) per row.
func (s *RunService) completeRound(ctx context.Context, q, explain querier, items []completeItem, now time.Time, results []orcheo.RunCompleted) error {
	// Rows are locked in the arrays' order: by id, as ClaimRuns and
	// HeartbeatRuns (index scans of id = ANY) lock them, so batches that
	// share runs wait for each other instead of deadlocking.
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b completeItem) int { return strings.Compare(a.id, b.id) })
	n := len(items)
	var (
		ids, statuses, errs, messages, kinds = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		attempts                             = make([]int32, n)
		outputs                              = make([]*string, n)
		retryAts                             = make([]*time.Time, n)
		wantsRetry                           = make([]bool, n)
	)
	st := newStepArrays()
	for i, it := range items {
		ids[i], attempts[i], statuses[i], outputs[i], errs[i] = it.id, int32(it.attempt), string(it.c.Status), nullJSON(it.c.Output), it.c.Error
		retryAts[i], wantsRetry[i] = rules.TimePtr(it.c.RetryAt), rules.WantsRetry(it.c)
		messages[i] = rules.CompletionMessage(it.attempt, it.c.Status, it.c.Error)
		kinds[i] = rules.CompletionEvent(it.c.Status)
		st.add(it.id, it.steps)
	}
	stmt, args := completeRunsSQL, []any{ids, attempts, statuses, outputs, errs, retryAts, wantsRetry, messages, kinds}
	if n == 1 && !s.arrays {
		// rowForms
		stmt, args = completeRunSQL, []any{ids[0], attempts[0], statuses[0], outputs[0], errs[0], retryAts[0], wantsRetry[0], messages[0], kinds[0]}
	}
	rows, err := q.Query(ctx, stmt, append(args, now,
		st.runIDs, st.seqs, st.nodes, st.types, st.statuses, st.outputs, st.errs, st.started, st.completed, st.nodeAttempts, st.inputs,
		rules.CompletionEvent(orcheo.RunPending), rules.CompletionEvent(orcheo.RunCancelled))...)
	if err != nil {
		return fmt.Errorf("complete %d runs: %w", n, FormatError(err))
	}
	done, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*orcheo.Run, error) { return scanRun(row) })
	if err != nil {
		return fmt.Errorf("complete %d runs: %w", n, FormatError(err))
	}
	byID := make(map[string]*orcheo.Run, len(done))
	for _, r := range done {
		byID[r.ID] = r
	}
	var lost []completeItem
	for _, it := range items {
		if r := byID[it.id]; r != nil {
			r.Steps = it.steps
			results[it.index] = orcheo.RunCompleted{Run: r}
		} else {
			lost = append(lost, it)
		}
	}
	if len(lost) > 0 {
		return s.whyNotCompleted(ctx, explain, lost, results)
	}
	return nil
}

// completeRetryCond is CompleteRun's retry rule (rules.WantsRetry, no
// cancel requested, rules.AttemptsLeft) in completeRunsSQL, per row. c's attempt column is named want_attempt so that the shared
// rules.AttemptsLeft reads the run's own attempt unambiguously.
const completeRetryCond = `(c.wants_retry AND NOT runs.cancel_requested AND ` + rules.AttemptsLeft + `)`

// completeRunsSQL is the statement of one round of CompleteRuns: $1-$9 the
// completions column by column, $10 now, $11-$21 their steps column by
// column, $22 and $23 the retry_scheduled and cancelled event kinds.
// completeRunSQL is its row form: $1-$9 the one completion's values (its
// steps stay arrays: a run has any number).
var (
	completeRunsSQL = completeSQL(`SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[],
				$6::timestamptz[], $7::boolean[], $8::text[], $9::text[])`)
	completeRunSQL = completeSQL(`SELECT $1::uuid, $2::int, $3::text, $4::text, $5::text, $6::timestamptz,
				$7::boolean, $8::text, $9::text`)
)

// completeSQL is a round's statement over the completions that source
// yields, in completeRunsSQL's columns.
func completeSQL(source string) string {
	return `WITH c (id, want_attempt, status, output, error, retry_at, wants_retry, message, kind) AS (
			` + source + `),
		r AS (
			UPDATE runs SET status = CASE WHEN ` + completeRetryCond + ` THEN 'pending'
					WHEN c.status <> 'succeeded' AND runs.cancel_requested THEN 'cancelled' ELSE c.status END,
				output = c.output::jsonb, error = c.error, lease_until = NULL,
				completed_at = CASE WHEN ` + completeRetryCond + ` THEN NULL ELSE $10::timestamptz END,
				not_before = CASE WHEN ` + completeRetryCond + ` THEN c.retry_at ELSE runs.not_before END,
				enqueued_at = CASE WHEN ` + completeRetryCond + ` THEN $10::timestamptz ELSE runs.enqueued_at END
			FROM c
			WHERE runs.id = c.id AND runs.status = 'running' AND runs.attempt = c.want_attempt
			RETURNING runs.*, c.message AS ev_message, c.kind AS ev_kind),
		steps AS (
			INSERT INTO run_steps (` + stepCols + `)
			SELECT r.id, r.attempt, s.seq, s.node, s.node_type, s.status, s.node_attempt, s.input::jsonb,
				s.output::jsonb, s.error, s.started_at, s.completed_at
			FROM r JOIN unnest($11::uuid[], $12::int[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
				$18::timestamptz[], $19::timestamptz[], $20::int[], $21::text[])
				AS s(run_id, seq, node, node_type, status, output, error, started_at, completed_at, node_attempt, input)
				ON s.run_id = r.id` + stepUpsert + `),
		ev AS (
			INSERT INTO run_events (run_id, at, kind, message)
			SELECT id, $10, CASE status WHEN 'pending' THEN $22::text WHEN 'cancelled' THEN $23::text ELSE ev_kind END, ev_message
			FROM r)
		SELECT ` + runCols + ` FROM ` + runFrom("r")
}

// whyNotCompleted fills in the results of items whose fenced update
// matched nothing: ENOTFOUND, or ECONFLICT naming the run's status or
// current attempt. It runs only on that failure path.
func (s *RunService) whyNotCompleted(ctx context.Context, q querier, lost []completeItem, results []orcheo.RunCompleted) error {
	ids := make([]string, len(lost))
	for i, it := range lost {
		ids[i] = it.id
	}
	rows, err := q.Query(ctx, `SELECT id::text, status, attempt FROM runs WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return fmt.Errorf("complete runs: explain conflicts: %w", FormatError(err))
	}
	type state struct {
		status  orcheo.RunStatus
		attempt int
	}
	found := make(map[string]state, len(ids))
	var (
		id, status string
		attempt    int
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &status, &attempt}, func() error {
		found[id] = state{orcheo.RunStatus(status), attempt}
		return nil
	}); err != nil {
		return fmt.Errorf("complete runs: explain conflicts: %w", FormatError(err))
	}
	for _, it := range lost {
		if st, ok := found[it.id]; ok {
			results[it.index] = orcheo.RunCompleted{Err: rules.NotRunningAttempt(it.id, it.attempt, st.status, st.attempt)}
		} else {
			results[it.index] = orcheo.RunCompleted{Err: rules.RunNotFound(it.id)}
		}
	}
	return nil
}

// stepArrays holds the steps of a round column by column, for unnest.
type stepArrays struct {
	runIDs, nodes, types, statuses, errs []string
	seqs, nodeAttempts                   []int32
	outputs, inputs                      []*string
	started                              []time.Time
	completed                            []*time.Time
}

// newStepArrays returns empty (not NULL) arrays: a round without steps
// unnests to no rows.
func newStepArrays() *stepArrays {
	return &stepArrays{runIDs: []string{}, nodes: []string{}, types: []string{}, statuses: []string{}, errs: []string{},
		seqs: []int32{}, nodeAttempts: []int32{}, outputs: []*string{}, inputs: []*string{},
		started: []time.Time{}, completed: []*time.Time{}}
}

func (a *stepArrays) add(runID string, steps []*orcheo.RunStep) {
	for _, st := range steps {
		a.runIDs, a.seqs, a.nodes, a.types = append(a.runIDs, runID), append(a.seqs, int32(st.Seq)), append(a.nodes, st.Node), append(a.types, st.NodeType)
		a.statuses, a.outputs, a.errs = append(a.statuses, string(st.Status)), append(a.outputs, nullJSON(st.Output)), append(a.errs, st.Error)
		a.started, a.completed = append(a.started, st.StartedAt), append(a.completed, st.CompletedAt)
		a.nodeAttempts, a.inputs = append(a.nodeAttempts, int32(st.NodeAttempt)), append(a.inputs, nullJSON(st.Input))
	}
}
