package test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// hostileWorkflows are workflows that each used to take a worker down, hold
// its slot or run away (issue 8, items 3, 4, 6 and 7). Each must end its own
// run failed, with errMatch in the error, while the worker carries on.
var hostileWorkflows = []struct {
	handle, definition, errMatch string
}{
	// Item 3: builtins that allocate without the VM's memory budget.
	{"oom-replace", `{"nodes":[{"id":"boom","type":"set","values":{"n":"let s = repeat(\"a\", 900000); len(replace(s, \"a\", s))"}}]}`, "boom"},
	{"oom-repeat", `{"nodes":[{"id":"boom","type":"set","values":{"n":"len(repeat(\"` + strings.Repeat("x", 500) + `\", 1000000))"}}]}`, "boom"},
	{"oom-doubling", `{"nodes":[{"id":"boom","type":"set","values":{"n":"let a = \"` + strings.Repeat("x", 10) + `\"; let b = a + a; let c = b + b; let d = c + c; let e = d + d; let f = e + e; let g = f + f; let h = g + g; let i = h + h; let j = i + i; let k = j + j; let l = k + k; let m = l + l; let n = m + m; let o = n + n; let p = o + o; let q = p + p; let r = q + q; let s = r + r; let t = s + s; let u = t + t; let v = u + u; let w = v + v; let x = w + w; let y = x + x; len(y)"}}]}`, "boom"},
	// Item 4: CPU-bound work past the node's timeout.
	{"cpu-timeout", `{"nodes":[{"id":"spin","type":"set","timeout":"2s","values":{"n":"reduce(1..100000000, #acc + # % 7, 0) + reduce(1..100000000, #acc + # % 5, 0)"}}]}`, "spin"},
	// Item 6: an output the database cannot store.
	{"nul-output", `{"nodes":[{"id":"nul","type":"set","values":{"s":"\"a\\u0000b\""}}]}`, "cannot be stored"},
}

// TestHostileWorkflowsLeaveTheWorkerStanding runs every hostile workflow,
// and one that starts itself without end (item 7), on one real worker
// process, with an ordinary run started in the middle of them: each hostile
// run fails with a clear error, the ordinary run succeeds, the self-starting
// chain stops at the depth bound, the worker process is still the one that
// started (no crash, no out-of-memory), its peak memory stayed under the
// bound docs/security.md states, and it burns no CPU once they have ended.
func TestHostileWorkflowsLeaveTheWorkerStanding(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, "e2e_hostile")
	worker := s.startWorker(4, "ORCHEO_MAX_CHILD_DEPTH=5")
	ctx := context.Background()

	for _, h := range hostileWorkflows {
		s.createWorkflow(h.handle, h.definition)
	}
	s.createWorkflow("ordinary", `{"nodes":[{"id":"hi","type":"set","values":{"greeting":"\"hello, \" + (input.name ?? \"world\")"}}]}`)
	s.createWorkflow("loop", `{"nodes":[{"id":"again","type":"workflow","workflow":"loop","wait":false}]}`)

	ids := map[string]string{}
	for _, h := range hostileWorkflows {
		run, err := s.client.StartRun(ctx, h.handle, []byte(`{}`), "")
		if err != nil {
			t.Fatalf("start %s: %v", h.handle, err)
		}
		ids[h.handle] = run.ID
	}
	loop, err := s.client.StartRun(ctx, "loop", []byte(`{}`), "")
	if err != nil {
		t.Fatal(err)
	}
	ordinary, err := s.client.StartRun(ctx, "ordinary", []byte(`{"name":"Ada"}`), "")
	if err != nil {
		t.Fatal(err)
	}

	wait := func(id string) *orcheo.Run {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		run, err := s.client.WaitRun(wctx, id, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("wait for run %s: %v\nworker output:\n%s", id, err, worker.out.String())
		}
		return run
	}
	if run := wait(ordinary.ID); run.Status != orcheo.RunSucceeded || !strings.Contains(string(run.Output), "hello, Ada") {
		t.Errorf("ordinary run: %s %q, output %s", run.Status, run.Error, run.Output)
	}
	for _, h := range hostileWorkflows {
		run := wait(ids[h.handle])
		if run.Status != orcheo.RunFailed || !strings.Contains(run.Error, h.errMatch) || strings.Contains(run.Error, "worker lost") {
			t.Errorf("%s: %s %q; want failed, naming %q", h.handle, run.Status, run.Error, h.errMatch)
		}
		if run.Attempt != 1 {
			t.Errorf("%s: %d attempts; a hostile workflow must fail once, not be retried", h.handle, run.Attempt)
		}
	}

	// The self-starting chain: the root and 5 levels of children, the
	// deepest failed with the reason, and nothing more.
	wait(loop.ID)
	var chain []*orcheo.Run
	waitFor(t, 30*time.Second, "the self-starting chain to stop", func() bool {
		runs, _, err := s.client.FindRuns(ctx, "loop", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if !r.Status.Terminal() {
				return false
			}
		}
		chain = runs
		return len(runs) >= 6
	})
	time.Sleep(time.Second) // a run started late would show now
	if runs, _, _ := s.client.FindRuns(ctx, "loop", "", 100); len(runs) != 6 || len(chain) != 6 {
		t.Fatalf("the self-starting workflow made %d runs, want 6 (depth bound 5)", len(runs))
	}
	failed := 0
	for _, r := range chain {
		if r.Status == orcheo.RunFailed && strings.Contains(r.Error, "nest at most 5 deep") {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("want exactly the deepest run failed at the depth bound; got %d", failed)
	}

	if worker.exited() {
		t.Fatalf("the worker exited:\n%s", worker.out.String())
	}
	peak := peakRSS(t, worker.cmd.Process.Pid)
	t.Logf("worker peak RSS %d MiB", peak>>20)
	if peak > hostileRSSBound {
		t.Errorf("the worker's peak memory was %d MiB, over the %d MiB bound", peak>>20, hostileRSSBound>>20)
	}
	// Nothing keeps burning CPU after the runs have ended.
	before := s.cpuTime(t)
	time.Sleep(3 * time.Second)
	if spent := s.cpuTime(t) - before; spent > time.Second {
		t.Errorf("api and worker used %s of CPU in 3 s of idle after the hostile runs", spent)
	}
}

// hostileRSSBound is the most memory the worker may have held at once
// while running the hostile workflows with 4 slots: docs/security.md's
// bound per evaluating expression times the slots, plus the process itself.
const hostileRSSBound = 512 << 20

// peakRSS reads a process's peak resident memory (VmHWM) from Linux's /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("read the worker's memory: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}
