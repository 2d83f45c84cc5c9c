package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
)

// heldWorkflow holds its worker slot for 4 s (below
// ORCHEO_DELAY_SUSPEND_AFTER, so it does not suspend).
const heldWorkflow = `
nodes:
  - id: wait
    type: delay
    duration: 4s
  - id: done
    type: set
    values:
      ok: 'true'
`

// TestControlShutdownTakesNoNewWork: workers asked to shut down (orcheo
// control shutdown) take nothing published after the request, only finish
// what they hold. Two workers each hold a 4 s run on a queue of their own
// and consume four more queues with a free slot each; once both report
// draining, a bulk retry (POST /api/runs/retry) publishes eight failed runs
// on those four queues, and only then does a third worker start on them:
// every retry runs on it, none on the draining workers, which exit 0 once
// their held runs have succeeded.
//
// Until the third worker takes them, the retried messages sit in front of
// eight idle fetchers of the draining workers: the fetch once chose at
// random between the stop and a free slot, so each took one about half the
// time (tasks/drain_test.go covers that deterministically).
func TestControlShutdownTakesNoNewWork(t *testing.T) {
	env, url, token := workerRegistryEnv(t, "drain")
	if out, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("orcheo migrate: exit %d: %s", code, out)
	}
	api := startProcess(t, env, "api")
	const retryQueues = "r1,r2,r3,r4"
	drainers := map[string]*process{
		"drain1": startProcess(t, env, "worker", "-c", "5", "-Q", "hold1,"+retryQueues, "-n", "drain1"),
		"drain2": startProcess(t, env, "worker", "-c", "5", "-Q", "hold2,"+retryQueues, "-n", "drain2"),
	}
	waitHealthy(t, api, url)
	c := client.New(url, token)
	ctx := context.Background()

	create := func(handle, def, queue string) {
		t.Helper()
		if out, code := cli(t, env, "workflows", "create", "-f", writeFile(t, handle+".yaml", def), "--handle", handle, "--queue", queue); code != 0 {
			t.Fatalf("workflows create %s: exit %d: %s", handle, code, out)
		}
	}
	for _, q := range []string{"r1", "r2", "r3", "r4"} {
		create("refuse-"+q, failingWorkflow, q)
	}
	create("hold1", heldWorkflow, "hold1")
	create("hold2", heldWorkflow, "hold2")

	workers := func() map[string]*orcheo.WorkerInfo {
		t.Helper()
		ws, err := c.Workers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byName := make(map[string]*orcheo.WorkerInfo, len(ws))
		for _, w := range ws {
			byName[w.Name] = w
		}
		return byName
	}
	waitFor(t, 30*time.Second, "both workers online", func() bool { return len(workers()) == 2 })
	online := workers()

	// Eight failed runs, two on each queue both workers consume.
	var failed []string
	for i := range 8 {
		run, err := c.StartRun(ctx, fmt.Sprintf("refuse-r%d", i%4+1), nil, "")
		if err != nil {
			t.Fatal(err)
		}
		failed = append(failed, run.ID)
	}
	for _, id := range failed {
		if run := waitRun(t, c, id); run.Status != orcheo.RunFailed || run.Attempt != 1 {
			t.Fatalf("run %s: %s at attempt %d, want failed at 1", id, run.Status, run.Attempt)
		}
	}

	held := map[string]string{} // draining worker → its held run
	for name := range drainers {
		run, err := c.StartRun(ctx, "hold"+name[len("drain"):], nil, "")
		if err != nil {
			t.Fatal(err)
		}
		held[name] = run.ID
	}
	waitFor(t, 30*time.Second, "each draining worker holding its run", func() bool {
		ws := workers()
		for name, id := range held {
			if w := ws[name]; w == nil || len(w.Active) != 1 || w.Active[0].RunID != id {
				return false
			}
		}
		return true
	})

	if told, err := c.Shutdown(ctx, []string{"drain1", "drain2"}); err != nil || len(told) != 2 {
		t.Fatalf("control shutdown: told %v, %v", told, err)
	}
	// Once a worker says it drains, its fetchers are closed; a worker gone
	// already has drained too (a slow machine).
	waitFor(t, 30*time.Second, "both workers draining", func() bool {
		ws := workers()
		for name := range drainers {
			if w := ws[name]; w != nil && w.State != orcheo.WorkerDraining {
				return false
			}
		}
		return true
	})
	res, err := c.RetryRuns(ctx, client.RunBulk{Query: client.RunQuery{Status: string(orcheo.RunFailed)}})
	if err != nil {
		t.Fatal(err)
	}
	retried := 0
	for _, o := range res.Runs {
		if o.Outcome == "retried" {
			retried++
		}
	}
	if retried != len(failed) {
		t.Fatalf("bulk retry: %d of %d runs retried: %+v", retried, len(failed), res.Runs)
	}
	// The retried runs wait in their queues, where only the draining
	// workers' fetchers are, until a worker that does not drain starts.
	keeper := startProcess(t, env, "worker", "-c", "4", "-Q", retryQueues, "-n", "keeper")
	var keeperID string
	waitFor(t, 30*time.Second, "keeper online", func() bool {
		w := workers()["keeper"]
		if w != nil {
			keeperID = w.ID
		}
		return w != nil
	})

	for _, id := range failed {
		run := waitRun(t, c, id)
		if run.Status != orcheo.RunFailed || run.Attempt != 2 {
			t.Fatalf("run %s after the retry: %s at attempt %d, want failed again at 2", id, run.Status, run.Attempt)
		}
		if run.WorkerID != keeperID {
			t.Errorf("run %s's retry ran on %q, want keeper (%s): a draining worker took new work", id, run.WorkerID, keeperID)
		}
	}
	for name, p := range drainers {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not exit within 30 s of control shutdown", name)
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("%s exited %d after control shutdown, want 0", name, code)
		}
		if run := waitRun(t, c, held[name]); run.Status != orcheo.RunSucceeded || run.Attempt != 1 || run.WorkerID != online[name].ID {
			t.Fatalf("%s's held run after the drain: %s at attempt %d by %q, want succeeded at 1 by %s (finished, not handed back)",
				name, run.Status, run.Attempt, run.WorkerID, online[name].ID)
		}
	}
	if keeper.exited() {
		t.Fatal("keeper exited")
	}
}
