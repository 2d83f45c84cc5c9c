// Package storetest is the conformance suite every store backend passes:
// the same contract tests, run against PostgreSQL and SQLite from their
// packages' tests, so the backends cannot drift apart.
package storetest

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
)

// Backend is what a backend's test hands the suite.
type Backend struct {
	// Open returns a migrated store and closes it when the test ends. Stores
	// of one test run may share a database, so tests that need no global
	// view isolate themselves by working on workflows of their own.
	Open func(tb testing.TB) *db.Store

	// FreshDSN returns the DSN of an empty database no one has migrated,
	// different on every call. Tests that count runs across workflows or
	// test migration use it.
	FreshDSN func(tb testing.TB) string
}

// Exercise runs the whole suite against backend.
func Exercise(t *testing.T, backend Backend) {
	t.Run("Workflows", func(t *testing.T) { exerciseWorkflows(t, backend) })
	t.Run("Runs", func(t *testing.T) { exerciseRuns(t, backend) })
	t.Run("List", func(t *testing.T) { exerciseList(t, backend) })
	t.Run("CreateBatch", func(t *testing.T) { exerciseCreateBatch(t, backend) })
	t.Run("Claim", func(t *testing.T) { exerciseClaim(t, backend) })
	t.Run("Steps", func(t *testing.T) { exerciseSteps(t, backend) })
	t.Run("Lease", func(t *testing.T) { exerciseLease(t, backend) })
	t.Run("Suspend", func(t *testing.T) { exerciseSuspend(t, backend) })
	t.Run("Retry", func(t *testing.T) { exerciseRetry(t, backend) })
	t.Run("Triggers", func(t *testing.T) { exerciseTriggers(t, backend) })
	t.Run("WebhookUpdate", func(t *testing.T) { exerciseWebhookUpdate(t, backend) })
	t.Run("Cron", func(t *testing.T) { exerciseCron(t, backend) })
	t.Run("Migrate", func(t *testing.T) { exerciseMigrate(t, backend) })
	t.Run("Stats", func(t *testing.T) { exerciseStats(t, backend) })
	t.Run("RunCounts", func(t *testing.T) { exerciseRunCounts(t, backend) })
	t.Run("Hostile", func(t *testing.T) { exerciseHostile(t, backend) })
	t.Run("Tree", func(t *testing.T) { exerciseTree(t, backend) })
	t.Run("Events", func(t *testing.T) { exerciseEvents(t, backend) })
	t.Run("Batch", func(t *testing.T) { exerciseBatch(t, backend) })
	t.Run("Purge", func(t *testing.T) { exercisePurge(t, backend) })
}

// openFresh opens a store on a database of its own.
func openFresh(tb testing.TB, backend Backend) *db.Store {
	tb.Helper()
	s, err := db.Open(context.Background(), backend.FreshDSN(tb))
	if err != nil {
		tb.Fatalf("open fresh store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// definition is a stand-in for a compiled workflow definition.
var definition = json.RawMessage(`{"nodes":[{"id":"a","type":"log"}]}`)

// uniqueHandle returns a handle no other test uses.
func uniqueHandle(prefix string) string {
	id := orcheo.NewID()
	return prefix + "-" + strings.ReplaceAll(id[len(id)-17:], "-", "")
}

// MustWorkflow creates a workflow with a unique handle and returns it with
// its version 1.
func MustWorkflow(tb testing.TB, s *db.Store) (*orcheo.Workflow, *orcheo.WorkflowVersion) {
	tb.Helper()
	wf := &orcheo.Workflow{Handle: uniqueHandle("wf"), Name: "test workflow"}
	v, err := s.Workflows.CreateWorkflow(context.Background(), wf, definition)
	if err != nil {
		tb.Fatalf("create workflow: %v", err)
	}
	return wf, v
}

// MustRun creates a pending manual run of wf's latest version, after
// applying the options to it.
func MustRun(tb testing.TB, s *db.Store, wf *orcheo.Workflow, opts ...func(*orcheo.Run)) *orcheo.Run {
	tb.Helper()
	r := &orcheo.Run{
		WorkflowID:  wf.ID,
		VersionID:   wf.LatestVersionID,
		TriggeredBy: orcheo.TriggerManual,
		Input:       json.RawMessage(`{"n":1}`),
	}
	for _, o := range opts {
		o(r)
	}
	got, created, err := s.Runs.CreateRun(context.Background(), r)
	if err != nil {
		tb.Fatalf("create run: %v", err)
	}
	if !created {
		tb.Fatalf("create run: got an existing run %s", got.ID)
	}
	return got
}

// MustClaim claims run id for worker "w1" with a lease a minute ahead.
func MustClaim(tb testing.TB, s *db.Store, id string) *orcheo.Run {
	tb.Helper()
	r, err := s.Runs.ClaimRun(context.Background(), id, "w1", time.Now().Add(time.Minute))
	if err != nil {
		tb.Fatalf("claim run %s: %v", id, err)
	}
	return r
}

// wantCode fails the test unless err carries the application error code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := orcheo.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
}

// wantMessageContains fails unless the application message contains sub.
func wantMessageContains(tb testing.TB, err error, sub string) {
	tb.Helper()
	if msg := orcheo.ErrorMessage(err); !strings.Contains(msg, sub) {
		tb.Fatalf("error message %q does not contain %q", msg, sub)
	}
}

// jsonEqual reports whether a and b encode equal values; the stores may
// reformat JSON (PostgreSQL jsonb does).
func jsonEqual(tb testing.TB, a, b json.RawMessage) bool {
	tb.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		tb.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
	ca, _ := json.Marshal(va)
	cb, _ := json.Marshal(vb)
	return string(ca) == string(cb)
}

// fixedClock returns a clock stuck at t, and a way to move it.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// BenchmarkCreateClaimComplete measures one run's whole store lifecycle:
// CreateRun, ClaimRun and CompleteRun with three steps.
func BenchmarkCreateClaimComplete(b *testing.B, s *db.Store) {
	ctx := context.Background()
	wf, _ := MustWorkflow(b, s)
	now := time.Now()
	steps := func() []*orcheo.RunStep {
		out := make([]*orcheo.RunStep, 3)
		for i := range out {
			out[i] = &orcheo.RunStep{Node: "n", NodeType: "log", Status: orcheo.StepSucceeded,
				Output: json.RawMessage(`{"ok":true}`), StartedAt: now, CompletedAt: &now}
		}
		return out
	}
	b.ResetTimer()
	for b.Loop() {
		r := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerManual,
			Input: json.RawMessage(`{"n":1}`)}
		if _, _, err := s.Runs.CreateRun(ctx, r); err != nil {
			b.Fatal(err)
		}
		c, err := s.Runs.ClaimRun(ctx, r.ID, "bench", now.Add(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Runs.CompleteRun(ctx, r.ID, c.Attempt, orcheo.RunCompletion{
			Status: orcheo.RunSucceeded, Output: json.RawMessage(`{"done":true}`), Steps: steps()}); err != nil {
			b.Fatal(err)
		}
	}
}
