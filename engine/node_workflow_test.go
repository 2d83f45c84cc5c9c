package engine_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
)

// heldChild is an orcheo.RunStarter with one child, which stays pending
// until the test ends it.
type heldChild struct {
	mu      sync.Mutex
	child   orcheo.Run
	starts  int
	lookups int
}

func (h *heldChild) StartChildRun(_ context.Context, c orcheo.ChildRun) (*orcheo.Run, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.starts++
	if h.child.ID == "" {
		h.child = orcheo.Run{ID: "child-1", Status: orcheo.RunPending, Input: c.Input}
	}
	cp := h.child
	return &cp, nil
}

func (h *heldChild) FindRunByID(_ context.Context, id string) (*orcheo.Run, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lookups++
	if id != h.child.ID {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "run %q not found", id)
	}
	cp := h.child
	return &cp, nil
}

// end finishes the child with status, output and error.
func (h *heldChild) end(status orcheo.RunStatus, output, errText string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.child.Status, h.child.Error = status, errText
	if output != "" {
		h.child.Output = json.RawMessage(output)
	}
}

// childEngine returns an engine whose workflow nodes wait 20 ms in their
// slot, then suspend, first for 10 ms.
func childEngine(tb testing.TB, h *heldChild) *engine.Engine {
	tb.Helper()
	return loopbackEngine(tb, engine.Options{Runs: h, SuspendChildWaitAfter: 20 * time.Millisecond, ChildPollInterval: 10 * time.Millisecond})
}

// childCheckpoint decodes a checkpoint's child wait.
func childCheckpoint(tb testing.TB, s *orcheo.Suspension) map[string]any {
	tb.Helper()
	var cp struct {
		Child map[string]any `json:"child"`
	}
	if err := json.Unmarshal(s.Checkpoint, &cp); err != nil || cp.Child == nil {
		tb.Fatalf("checkpoint %s has no child wait (%v)", s.Checkpoint, err)
	}
	return cp.Child
}

// withChild rewrites the checkpoint's child wait field key to v.
func withChild(tb testing.TB, raw json.RawMessage, key string, v any) json.RawMessage {
	tb.Helper()
	var cp map[string]any
	if err := json.Unmarshal(raw, &cp); err != nil {
		tb.Fatal(err)
	}
	cp["child"].(map[string]any)[key] = v
	out, err := json.Marshal(cp)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

const parentDefinition = `{"nodes":[
	{"id":"a","type":"set","values":{"n":"input.n"}},
	{"id":"call","type":"workflow","workflow":"double","input":"{\"n\": state.n}"},
	{"id":"use","type":"set","values":{"got":"steps.call.output.output.doubled","a":"steps.a.output.n"}}]}`

// TestWorkflowNode_SuspendAndResume: a child still pending after the
// in-slot wait suspends the parent at the workflow node; a resume while it
// is still pending suspends again at once, with no step and a longer
// wait; the resume after it succeeded ends the node with its output, and
// the nodes after it see the state from before the suspension.
func TestWorkflowNode_SuspendAndResume(t *testing.T) {
	t.Parallel()
	h := &heldChild{}
	e := childEngine(t, h)
	def := mustCompile(t, e, parentDefinition)
	r := &orcheo.Run{ID: "parent", Attempt: 1, Input: json.RawMessage(`{"n":21}`)}
	opts := orcheo.ExecuteOptions{Suspendable: true}

	x := e.Execute(context.Background(), def, r, opts)
	if x.Err != nil || x.Suspended == nil || stepLines(x.Steps) != "1 a succeeded; 2 call waiting" {
		t.Fatalf("first execution: err %v, suspended %v, steps %s", x.Err, x.Suspended, stepLines(x.Steps))
	}
	if in := string(x.Steps[1].Input); !strings.Contains(in, `"run_id":"child-1"`) {
		t.Fatalf("waiting step input = %s", in)
	}
	w := childCheckpoint(t, x.Suspended)
	if w["run_id"] != "child-1" || x.Suspended.Until.After(time.Now().Add(time.Second)) {
		t.Fatalf("child wait %v, until %v", w, x.Suspended.Until)
	}

	// Still pending: suspended again, twice as long, no step recorded.
	r.Attempt, r.ReleasedAttempts = 2, 1
	opts.Checkpoint = x.Suspended.Checkpoint
	again := e.Execute(context.Background(), def, r, opts)
	if again.Err != nil || again.Suspended == nil || len(again.Steps) != 0 {
		t.Fatalf("resume while pending: err %v, suspended %v, steps %s", again.Err, again.Suspended, stepLines(again.Steps))
	}
	if p1, p2 := w["poll"].(float64), childCheckpoint(t, again.Suspended)["poll"].(float64); p2 != 2*p1 {
		t.Fatalf("next poll %v after %v, want it doubled", p2, p1)
	}

	h.end(orcheo.RunSucceeded, `{"doubled":42}`, "")
	r.Attempt, r.ReleasedAttempts = 3, 2
	opts.Checkpoint = again.Suspended.Checkpoint
	done := e.Execute(context.Background(), def, r, opts)
	if done.Err != nil || done.Suspended != nil || stepLines(done.Steps) != "2 call succeeded; 3 use succeeded" {
		t.Fatalf("resume after the child: err %v, suspended %v, steps %s", done.Err, done.Suspended, stepLines(done.Steps))
	}
	if !jsonSame(t, done.Output, json.RawMessage(`{"n":21,"got":42,"a":21}`)) {
		t.Fatalf("output = %s", done.Output)
	}
	if !done.Steps[0].StartedAt.Equal(x.Steps[1].StartedAt) || !strings.Contains(string(done.Steps[0].Output), `"status":"succeeded"`) {
		t.Fatalf("resumed step = %+v, first started %v", done.Steps[0], x.Steps[1].StartedAt)
	}
	if h.starts != 1 {
		t.Fatalf("child started %d times, want once", h.starts)
	}
}

// TestWorkflowNode_ResumeChildFailed: the resume after the child failed
// fails the node, and the run, with the child's error.
func TestWorkflowNode_ResumeChildFailed(t *testing.T) {
	t.Parallel()
	for _, status := range []orcheo.RunStatus{orcheo.RunFailed, orcheo.RunCancelled} {
		h := &heldChild{}
		e := childEngine(t, h)
		def := mustCompile(t, e, parentDefinition)
		r := &orcheo.Run{ID: "parent", Attempt: 1, Input: json.RawMessage(`{"n":1}`)}
		x := e.Execute(context.Background(), def, r, orcheo.ExecuteOptions{Suspendable: true})
		if x.Suspended == nil {
			t.Fatalf("not suspended: err %v, steps %s", x.Err, stepLines(x.Steps))
		}
		msg := ""
		if status == orcheo.RunFailed {
			msg = `node "x": broken`
		}
		h.end(status, "", msg)
		r.Attempt, r.ReleasedAttempts = 2, 1
		done := e.Execute(context.Background(), def, r, orcheo.ExecuteOptions{Suspendable: true, Checkpoint: x.Suspended.Checkpoint})
		want := map[orcheo.RunStatus]string{
			orcheo.RunFailed:    `node "call": child run child-1 failed: node "x": broken`,
			orcheo.RunCancelled: `node "call": child run child-1 cancelled: cancelled`,
		}[status]
		if errText(done.Err) != want || stepLines(done.Steps) != "2 call failed" {
			t.Fatalf("child %s: err %v, steps %s; want %s", status, done.Err, stepLines(done.Steps), want)
		}
	}
}

// TestWorkflowNode_TimeoutAcrossSuspensions: the node's timeout counts
// from its first try, the suspensions included, and so does the run's: a
// resume past either deadline fails the run as timed out. A suspension
// never lasts past the node's deadline.
func TestWorkflowNode_TimeoutAcrossSuspensions(t *testing.T) {
	t.Parallel()
	h := &heldChild{}
	e := childEngine(t, h)
	r := &orcheo.Run{ID: "parent", Attempt: 1}
	opts := orcheo.ExecuteOptions{Suspendable: true}

	// The node's own timeout: the suspension ends at its deadline at the
	// latest, and a resume past it times the node out.
	def := mustCompile(t, e, `{"nodes":[{"id":"call","type":"workflow","workflow":"w","timeout":"2h"}]}`)
	x := e.Execute(context.Background(), def, r, opts)
	if x.Suspended == nil {
		t.Fatalf("not suspended: err %v", x.Err)
	}
	if d := childCheckpoint(t, x.Suspended)["deadline"].(string); !strings.HasPrefix(d, "20") {
		t.Fatalf("deadline %q", d)
	}
	short := withChild(t, x.Suspended.Checkpoint, "deadline", time.Now().Add(50*time.Millisecond).Format(time.RFC3339Nano))
	short = withChild(t, short, "poll", float64(time.Hour))
	r.Attempt, r.ReleasedAttempts = 2, 1
	capped := e.Execute(context.Background(), def, r, orcheo.ExecuteOptions{Suspendable: true, Checkpoint: short})
	if capped.Suspended == nil || capped.Suspended.Until.After(time.Now().Add(time.Second)) {
		t.Fatalf("suspension near the node's deadline: err %v, suspended %+v", capped.Err, capped.Suspended)
	}
	late := withChild(t, x.Suspended.Checkpoint, "deadline", time.Now().Add(-time.Minute).Format(time.RFC3339Nano))
	r.Attempt, r.ReleasedAttempts = 3, 2
	timedOut := e.Execute(context.Background(), def, r, orcheo.ExecuteOptions{Suspendable: true, Checkpoint: late})
	if errText(timedOut.Err) != `node "call": timed out after 2h0m0s` || stepLines(timedOut.Steps) != "1 call failed" {
		t.Fatalf("resume past the node's deadline: err %v, steps %s", timedOut.Err, stepLines(timedOut.Steps))
	}

	// The run's timeout, kept in the checkpoint as for a delay.
	def = mustCompile(t, e, `{"timeout":"3h","nodes":[{"id":"call","type":"workflow","workflow":"w"}]}`)
	r = &orcheo.Run{ID: "parent-2", Attempt: 1}
	x = e.Execute(context.Background(), def, r, opts)
	if x.Suspended == nil {
		t.Fatalf("not suspended: err %v", x.Err)
	}
	var cp map[string]any
	if err := json.Unmarshal(x.Suspended.Checkpoint, &cp); err != nil {
		t.Fatal(err)
	}
	cp["deadline"] = time.Now().Add(-time.Minute).Format(time.RFC3339Nano)
	raw, _ := json.Marshal(cp)
	r.Attempt, r.ReleasedAttempts = 2, 1
	runOut := e.Execute(context.Background(), def, r, orcheo.ExecuteOptions{Suspendable: true, Checkpoint: raw})
	if !strings.Contains(errText(runOut.Err), "run timed out after 3h0m0s") || runOut.Suspended != nil {
		t.Fatalf("resume past the run's deadline: err %v, suspended %v", runOut.Err, runOut.Suspended)
	}
}

// TestWorkflowNode_NoSuspend: a caller that cannot resume runs, or an
// engine told never to suspend, waits in the slot as before.
func TestWorkflowNode_NoSuspend(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		opts    engine.Options
		suspend bool
	}{
		"NotSuspendable": {opts: engine.Options{SuspendChildWaitAfter: 20 * time.Millisecond}},
		"NeverSuspend":   {opts: engine.Options{SuspendChildWaitAfter: -1}, suspend: true},
	} {
		h := &heldChild{}
		tc.opts.Runs, tc.opts.ChildPollInterval = h, 5*time.Millisecond
		e := loopbackEngine(t, tc.opts)
		def := mustCompile(t, e, `{"nodes":[{"id":"call","type":"workflow","workflow":"w"}]}`)
		go func() {
			// End the child once the node has looked at it a few times,
			// well past the 20 ms in-slot wait.
			for {
				h.mu.Lock()
				n := h.lookups
				h.mu.Unlock()
				if n >= 8 {
					h.end(orcheo.RunSucceeded, `{}`, "")
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		x := e.Execute(context.Background(), def, &orcheo.Run{ID: "p", Attempt: 1}, orcheo.ExecuteOptions{Suspendable: tc.suspend})
		if x.Err != nil || x.Suspended != nil || stepLines(x.Steps) != "1 call succeeded" {
			t.Fatalf("%s: err %v, suspended %v, steps %s", name, x.Err, x.Suspended, stepLines(x.Steps))
		}
	}
}
