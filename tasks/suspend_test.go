package tasks

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
)

// delayDefinition waits 3 s between two set nodes; the second reads the
// first's output, so the resumed attempt must see it.
const delayDefinition = `{"nodes":[
	{"id":"a","type":"set","values":{"n":"input.n + 1"}},
	{"id":"wait","type":"delay","duration":"3s"},
	{"id":"b","type":"set","values":{"m":"steps.a.output.n * 10"}}]}`

// waitSuspended polls until run id is parked at a delay.
func (f *fixture) waitSuspended(tb testing.TB, id string) *orcheo.Run {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		run, err := f.store.Runs.FindRunByID(context.Background(), id)
		if err != nil {
			tb.Fatalf("find run: %v", err)
		}
		if run.Status == orcheo.RunPending && run.ReleasedAttempts > 0 && run.NotBefore != nil {
			return run
		}
		if run.Status.Terminal() || time.Now().After(deadline) {
			tb.Fatalf("run %s is %s (error %q), not suspended", id, run.Status, run.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWorker_DelaySuspends runs a worker with one slot on a real
// redis-server: a run at a 3 s delay (threshold 1 s) frees the slot, another
// run executes meanwhile, and the first resumes after the delay with the
// steps of both attempts. A suspended run cancels at once.
func TestWorker_DelaySuspends(t *testing.T) {
	t.Parallel()
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, backend, "tasks_suspend")
			rs := testenv.StartRedis(t)
			f := newFixture(t, store, rs.URL())
			f.worker.cfg.Concurrency = 1
			f.engine = engine.New(engine.Options{Logger: testLogger(), SuspendDelaysAfter: time.Second})
			f.worker.Engine = f.engine
			f.start(t)
			ctx := context.Background()

			slow := f.createRun(t, delayDefinition, `{"n":1}`)
			if err := f.queue.EnqueueRun(ctx, slow); err != nil {
				t.Fatal(err)
			}
			parked := f.waitSuspended(t, slow.ID)
			if parked.Attempt != 1 || len(parked.Steps) != 2 || parked.Steps[1].Node != "wait" || parked.Steps[1].Status != orcheo.StepWaiting {
				t.Fatalf("suspended run: attempt %d, steps %s", parked.Attempt, stepList(parked.Steps))
			}

			// The only slot is free: another run executes during the delay.
			quick := f.createRun(t, okDefinition, `{"n":21}`)
			if err := f.queue.EnqueueRun(ctx, quick); err != nil {
				t.Fatal(err)
			}
			if got := f.waitTerminal(t, quick.ID); got.Status != orcheo.RunSucceeded || !got.CompletedAt.Before(*parked.NotBefore) {
				t.Fatalf("run during the delay: %s at %v, delay ends %v", got.Status, got.CompletedAt, parked.NotBefore)
			}

			done := f.waitTerminal(t, slow.ID)
			if done.Status != orcheo.RunSucceeded || done.Attempt != 2 || done.ReleasedAttempts != 1 {
				t.Fatalf("resumed run: %s (error %q), attempt %d, released %d", done.Status, done.Error, done.Attempt, done.ReleasedAttempts)
			}
			if got, want := stepList(done.Steps), "1/1 a succeeded, 2/1 wait waiting, 2/2 wait succeeded, 3/2 b succeeded"; got != want {
				t.Fatalf("steps = %s, want %s", got, want)
			}
			var out struct{ M, N float64 }
			if err := json.Unmarshal(done.Output, &out); err != nil || out.M != 20 || out.N != 2 {
				t.Fatalf("output = %s", done.Output)
			}
			if done.CompletedAt.Before(*parked.NotBefore) {
				t.Fatalf("resumed at %v, before the delay's end %v", done.CompletedAt, parked.NotBefore)
			}

			// Cancel of a suspended run: pending → cancelled at once.
			cancelled := f.createRun(t, delayDefinition, `{"n":1}`)
			if err := f.queue.EnqueueRun(ctx, cancelled); err != nil {
				t.Fatal(err)
			}
			f.waitSuspended(t, cancelled.ID)
			got, err := store.Runs.CancelRun(ctx, cancelled.ID)
			if err != nil || got.Status != orcheo.RunCancelled {
				t.Fatalf("cancel of a suspended run = %+v, %v", got, err)
			}
			// Its message still comes back at the delay's end (it is counted
			// until acked); the claim skips it and the run stays cancelled.
			deadline := time.Now().Add(30 * time.Second)
			for {
				counts, err := f.queue.broker.rdb.messageCounts(ctx, []*orcheo.Run{cancelled})
				if err != nil {
					t.Fatal(err)
				}
				if counts[0] == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the cancelled run's message is still in Redis after 30s")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if again, err := store.Runs.FindRunByID(ctx, cancelled.ID); err != nil || again.Status != orcheo.RunCancelled {
				t.Fatalf("cancelled run later = %+v, %v", again, err)
			}
		})
	}
}

// stepList shows steps as "seq/attempt node status, …".
func stepList(steps []*orcheo.RunStep) string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = strings.Join([]string{itoa(s.Seq) + "/" + itoa(s.Attempt), s.Node, string(s.Status)}, " ")
	}
	return strings.Join(out, ", ")
}
