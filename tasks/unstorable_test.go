package tasks

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/mock"
)

// nulOutputDefinition's set node produces "a\u0000b", a result no store
// can keep (issue #8, item 6).
const nulOutputDefinition = `{"nodes":[{"id":"a","type":"set","values":{"x":"\"a\\u0000b\""}}]}`

// nulErrorDefinition fails with a message holding a NUL: error text is
// kept with the NUL replaced.
const nulErrorDefinition = `{"nodes":[{"id":"a","type":"set","values":{"x":"1"}},{"id":"b","type":"fail","message":"\"bad \\u0000 thing\""}]}`

// TestWorker_UnstorableResult runs, on a worker with one slot, a run whose
// output cannot be stored and then an ordinary one: the first must end
// failed at once saying why, with its steps, and free the slot for the
// second, which succeeds. Before, the worker retried the completion for
// 30 s and the run ended "worker lost" with its result gone.
func TestWorker_UnstorableResult(t *testing.T) {
	t.Parallel()
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, backend, "tasks_unstorable")
			rs := testenv.StartRedis(t)
			f := newFixture(t, store, rs.URL(), func(c *Config, _ *engine.Options) { c.Concurrency = 1 })
			f.start(t)
			ctx := context.Background()
			bad := f.createRun(t, nulOutputDefinition, `{}`)
			badErr := f.createRun(t, nulErrorDefinition, `{}`)
			good := f.createRun(t, okDefinition, `{"n":21}`)
			start := time.Now()
			for _, r := range []*orcheo.Run{bad, badErr, good} {
				if err := f.queue.EnqueueRun(ctx, r); err != nil {
					t.Fatal(err)
				}
			}

			got := f.waitTerminal(t, bad.ID)
			if got.Status != orcheo.RunFailed {
				t.Fatalf("status = %s (error %q), want failed", got.Status, got.Error)
			}
			if want := `run output: contains a NUL character (\u0000), which cannot be stored (at $.x)`; got.Error != want {
				t.Fatalf("error = %q, want %q", got.Error, want)
			}
			if len(got.Output) != 0 {
				t.Fatalf("output = %s, want none", got.Output)
			}
			if len(got.Steps) != 1 || got.Steps[0].Node != "a" || got.Steps[0].Status != orcheo.StepSucceeded ||
				!strings.Contains(string(got.Steps[0].Output), "cannot be stored") {
				t.Fatalf("steps = %+v, want step a kept with its output replaced by a marker", got.Steps)
			}

			gotErr := f.waitTerminal(t, badErr.ID)
			if gotErr.Status != orcheo.RunFailed || !strings.Contains(gotErr.Error, "bad \uFFFD thing") || !utf8.ValidString(gotErr.Error) {
				t.Fatalf("fail-node run = %s %q, want failed with the NUL replaced", gotErr.Status, gotErr.Error)
			}
			if len(gotErr.Steps) != 2 || !strings.Contains(gotErr.Steps[1].Error, "bad \uFFFD thing") {
				t.Fatalf("fail-node steps = %+v", gotErr.Steps)
			}

			ok := f.waitTerminal(t, good.ID)
			if ok.Status != orcheo.RunSucceeded || !strings.Contains(string(ok.Output), "42") {
				t.Fatalf("unrelated run = %s %q %s, want succeeded", ok.Status, ok.Error, ok.Output)
			}
			// One slot ran all three: none of them waited out a retry loop.
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("three runs took %s on one slot: a completion was retried", d)
			}
		})
	}
}

func TestStorable(t *testing.T) {
	t.Parallel()
	now := time.Now()
	engineStep := &orcheo.RunStep{Seq: 1, Node: "a", NodeType: "http", Status: orcheo.StepFailed,
		Input: json.RawMessage(`{"url":"https://x/\u0000"}`), Output: json.RawMessage(`{"n":1e999999}`),
		Error: "status 500: \x00\xff", StartedAt: now}
	for _, tc := range []struct {
		name                  string
		in                    orcheo.RunCompletion
		wantStatus            orcheo.RunStatus
		wantError             string
		wantOutput, wantRetry bool
	}{
		{"StorableUntouched", orcheo.RunCompletion{Status: orcheo.RunSucceeded, Output: json.RawMessage(`{"x":"é"}`)},
			orcheo.RunSucceeded, "", true, false},
		{"SucceededWithNUL", orcheo.RunCompletion{Status: orcheo.RunSucceeded, Output: json.RawMessage(`{"x":"a\u0000b"}`)},
			orcheo.RunFailed, `run output: contains a NUL character (\u0000), which cannot be stored (at $.x)`, false, false},
		{"FailedKeepsErrorAndRetry", orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "boom\x00", RetryAt: &now,
			Output: json.RawMessage("{\"x\":\"\xff\"}")},
			orcheo.RunFailed, "boom\uFFFD; run output: contains invalid UTF-8 (byte 0xFF), which cannot be stored (at $.x)", false, true},
		{"CancelledStaysCancelled", orcheo.RunCompletion{Status: orcheo.RunCancelled, Error: "cancelled", Output: json.RawMessage(`[1e-999999]`)},
			orcheo.RunCancelled, "cancelled; run output: number 1e-999999 is out of range", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.in
			c.Steps = []*orcheo.RunStep{engineStep}
			storable(&c)
			if c.Status != tc.wantStatus || !strings.HasPrefix(c.Error, tc.wantError) || (len(c.Output) > 0) != tc.wantOutput ||
				(c.RetryAt != nil) != tc.wantRetry {
				t.Fatalf("storable = %s %q output %s retry %v", c.Status, c.Error, c.Output, c.RetryAt)
			}
			st := c.Steps[0]
			if st == engineStep || st.Error != "status 500: \uFFFD\uFFFD" ||
				!strings.Contains(string(st.Input), `"unstorable":"input: contains a NUL`) ||
				!strings.Contains(string(st.Output), `"unstorable":"output: number 1e999999 is out of range`) {
				t.Fatalf("step = %+v / %s / %s", st, st.Input, st.Output)
			}
			if orcheo.CheckJSON("x", st.Input) != nil || orcheo.CheckJSON("x", st.Output) != nil {
				t.Fatal("markers are not storable")
			}
			if engineStep.Error != "status 500: \x00\xff" {
				t.Fatal("the engine's step was changed")
			}
		})
	}
}

// TestComplete_RefusedResultFailsAtOnce checks the backstop: a completion
// the store refuses as EINVALID is recorded at once as a failure with the
// store's reason, not retried until the lease runs out.
func TestComplete_RefusedResultFailsAtOnce(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var calls []orcheo.RunCompletion
	var refuse func(n int) bool // whether the n-th call (from 1) is refused
	runs := &mock.RunService{CompleteRunsFn: func(_ context.Context, cs []orcheo.AttemptCompletion) ([]orcheo.RunCompleted, error) {
		out := make([]orcheo.RunCompleted, len(cs))
		for i, c := range cs {
			calls = append(calls, c.Completion)
			if refuse(len(calls)) {
				out[i].Err = orcheo.Errorf(orcheo.EINVALID, "a value cannot be stored: the database refused it")
			} else {
				out[i].Run = &orcheo.Run{ID: c.RunID, Status: c.Completion.Status, Error: c.Completion.Error}
			}
		}
		return out, nil
	}}
	c := newCompleter(runs, completeTimeout)
	c.Start(context.Background())
	t.Cleanup(c.Stop)
	refuse = func(n int) bool { return n == 1 }
	start := time.Now()
	done := c.complete(&orcheo.Run{ID: "r1", Attempt: 1}, orcheo.RunCompletion{Status: orcheo.RunSucceeded,
		Output: json.RawMessage(`{"ok":true}`), Steps: []*orcheo.RunStep{{Seq: 1, Node: "a", Status: orcheo.StepSucceeded,
			Output: json.RawMessage(`{"ok":true}`), StartedAt: now}}}, testLogger())
	if time.Since(start) > time.Second || len(calls) != 2 {
		t.Fatalf("%d calls in %s, want 2 at once", len(calls), time.Since(start))
	}
	if done == nil || done.Status != orcheo.RunFailed || done.Error != "run result cannot be stored: a value cannot be stored: the database refused it" {
		t.Fatalf("done = %+v", done)
	}
	if c := calls[1]; len(c.Output) != 0 || len(c.Steps) != 1 || c.Steps[0].Output != nil || c.Steps[0].Node != "a" {
		t.Fatalf("second completion = %+v", c)
	}

	// Refused again: given up at once, left for the rescuer.
	calls = nil
	refuse = func(int) bool { return true }
	if done := c.complete(&orcheo.Run{ID: "r1", Attempt: 1}, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "x"}, testLogger()); done != nil || len(calls) != 2 {
		t.Fatalf("done = %+v after %d calls, want nil after 2", done, len(calls))
	}
}

// TestStepWriter_SavesStorableSteps checks the 250 ms saver replaces what
// no store keeps before saving, so a step is never refused over and over.
func TestStepWriter_SavesStorableSteps(t *testing.T) {
	t.Parallel()
	saved := &savedSteps{}
	runs := &mock.RunService{SaveRunStepFn: saved.save}
	w := newStepWriter(runs, testLogger(), time.Hour)
	st := step(1, orcheo.StepSucceeded)
	st.Output, st.Error = json.RawMessage(`{"x":"\u0000"}`), "e\x00"
	w.RecordStep(context.Background(), st)
	w.flush()
	w.close()
	got := saved.all()
	if len(got) != 1 || orcheo.CheckJSON("output", got[0].Output) != nil || got[0].Error != "e\uFFFD" {
		t.Fatalf("saved = %+v", got)
	}
}

// TestWorker_UnstorableCheckpoint checks a run that would suspend at a long
// delay with state no store can keep: it ends failed at once saying why,
// instead of staying running until the rescuer takes it.
func TestWorker_UnstorableCheckpoint(t *testing.T) {
	t.Parallel()
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, backend, "tasks_unstorable_cp")
			rs := testenv.StartRedis(t)
			f := newFixture(t, store, rs.URL(), func(c *Config, o *engine.Options) {
				c.Concurrency, o.SuspendDelaysAfter = 1, time.Second
			})
			f.start(t)
			run := f.createRun(t, `{"nodes":[{"id":"a","type":"set","values":{"x":"\"a\\u0000b\""}},
				{"id":"wait","type":"delay","duration":"3s"}]}`, `{}`)
			if err := f.queue.EnqueueRun(context.Background(), run); err != nil {
				t.Fatal(err)
			}
			got := f.waitTerminal(t, run.ID)
			if got.Status != orcheo.RunFailed || !strings.HasPrefix(got.Error, `run checkpoint: contains a NUL character (\u0000), which cannot be stored`) {
				t.Fatalf("run = %s %q, want failed on the checkpoint", got.Status, got.Error)
			}
			if len(got.Steps) != 2 || !strings.Contains(string(got.Steps[0].Output), "unstorable") || got.Steps[1].Node != "wait" {
				t.Fatalf("steps = %+v", got.Steps)
			}
		})
	}
}
