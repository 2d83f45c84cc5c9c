package engine_test

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/sirupsen/logrus"
)

// manualClock is an engine clock that moves only when told.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// suspendEngine returns an engine that suspends delays over 10 s, on a
// manual clock.
func suspendEngine(tb testing.TB) (*engine.Engine, *manualClock) {
	tb.Helper()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	clock := &manualClock{t: time.Now().UTC().Truncate(time.Second)}
	return engine.New(engine.Options{Logger: logger, Now: clock.now, SuspendDelaysAfter: 10 * time.Second}), clock
}

// stepLines shows steps as "seq node status; …".
func stepLines(steps []*orcheo.RunStep) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(strings.Join([]string{strconv.Itoa(s.Seq), s.Node, string(s.Status)}, " "))
		b.WriteString("; ")
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// TestCheckpoint_Resume suspends each workflow at its long delays and
// resumes it from the checkpoint, attempt after attempt, until it ends: the
// state, step outputs and branch decisions made before a delay are what
// the nodes after it see, and steps number on across the attempts.
func TestCheckpoint_Resume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		def      string
		input    string
		suspends []string // per suspended execution: its steps
		final    string   // the last execution's steps
		output   string
	}{{
		name: "StateAndStepOutputs",
		def: `{"nodes":[
			{"id":"a","type":"set","values":{"n":"input.n + 1"}},
			{"id":"wait","type":"delay","duration":"1h"},
			{"id":"b","type":"set","values":{"sum":"state.n + steps.a.output.n + input.n","waited":"steps.wait.output.waited"}}]}`,
		input:    `{"n":1}`,
		suspends: []string{"1 a succeeded; 2 wait waiting"},
		final:    "2 wait succeeded; 3 b succeeded",
		output:   `{"n":2,"sum":5,"waited":"1h0m0s"}`,
	}, {
		name: "BranchBeforeTheDelay",
		def: `{"nodes":[
			{"id":"check","type":"if","condition":"input.go","then":"wait","else":"other"},
			{"id":"wait","type":"delay","duration":"1h","next":"after"},
			{"id":"after","type":"set","values":{"path":"'then'"}},
			{"id":"other","type":"set","values":{"path":"'else'"}}]}`,
		input:    `{"go":true}`,
		suspends: []string{"1 check succeeded; 2 wait waiting"},
		final:    "2 wait succeeded; 3 after succeeded; 4 other skipped",
		output:   `{"path":"then"}`,
	}, {
		name: "BranchAfterTheDelay",
		def: `{"nodes":[
			{"id":"a","type":"set","values":{"k":"input.k"}},
			{"id":"wait","type":"delay","duration":"1h","next":"pick"},
			{"id":"pick","type":"switch","cases":[{"when":"state.k == 'x'","to":"x"}],"default":"y"},
			{"id":"x","type":"set","values":{"took":"'x'"}},
			{"id":"y","type":"set","values":{"took":"'y'"}}],
			"edges":[{"from":"a","to":"wait"}]}`,
		input:    `{"k":"x"}`,
		suspends: []string{"1 a succeeded; 2 wait waiting"},
		final:    "2 wait succeeded; 3 pick succeeded; 4 x succeeded; 5 y skipped",
		output:   `{"k":"x","took":"x"}`,
	}, {
		name: "SecondDelay",
		def: `{"nodes":[
			{"id":"a","type":"set","values":{"n":"1"}},
			{"id":"w1","type":"delay","duration":"1h"},
			{"id":"b","type":"set","values":{"m":"state.n + 1"}},
			{"id":"w2","type":"delay","until":"steps.w1.output.until"},
			{"id":"w3","type":"delay","duration":"2h"},
			{"id":"c","type":"set","values":{"o":"state.m + steps.b.output.m"}}]}`,
		suspends: []string{"1 a succeeded; 2 w1 waiting", "2 w1 succeeded; 3 b succeeded; 4 w2 succeeded; 5 w3 waiting"},
		final:    "5 w3 succeeded; 6 c succeeded",
		output:   `{"m":2,"n":1,"o":4}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, clock := suspendEngine(t)
			def := mustCompile(t, e, tt.def)
			run := &orcheo.Run{ID: "run-1", WorkflowID: "wf-1", Attempt: 1, TriggeredBy: orcheo.TriggerManual, Input: json.RawMessage(tt.input)}
			opts := orcheo.ExecuteOptions{Suspendable: true}
			for i, want := range tt.suspends {
				x := e.Execute(context.Background(), def, run, opts)
				if x.Err != nil || x.Suspended == nil {
					t.Fatalf("execution %d: err %v, suspended %v, steps %s", i+1, x.Err, x.Suspended, stepLines(x.Steps))
				}
				if got := stepLines(x.Steps); got != want {
					t.Fatalf("execution %d steps = %s, want %s", i+1, got, want)
				}
				if last := x.Steps[len(x.Steps)-1]; last.CompletedAt != nil || !strings.Contains(string(last.Input), x.Suspended.Until.UTC().Format(time.RFC3339)) {
					t.Fatalf("waiting step = %+v, suspended until %s", last, x.Suspended.Until)
				}
				if x.Suspended.Until.Before(clock.now().Add(time.Hour - time.Second)) {
					t.Fatalf("suspended until %s, clock at %s", x.Suspended.Until, clock.now())
				}
				clock.advance(x.Suspended.Until.Sub(clock.now()))
				run.Attempt++
				opts.Checkpoint = x.Suspended.Checkpoint
			}
			x := e.Execute(context.Background(), def, run, opts)
			if x.Err != nil || x.Suspended != nil {
				t.Fatalf("last execution: err %v, suspended %v, steps %s", x.Err, x.Suspended, stepLines(x.Steps))
			}
			if got := stepLines(x.Steps); got != tt.final {
				t.Fatalf("last steps = %s, want %s", got, tt.final)
			}
			for _, s := range x.Steps {
				if s.Attempt != run.Attempt {
					t.Fatalf("step %d has attempt %d, want %d", s.Seq, s.Attempt, run.Attempt)
				}
			}
			if !jsonSame(t, x.Output, json.RawMessage(tt.output)) {
				t.Fatalf("output = %s, want %s", x.Output, tt.output)
			}
		})
	}
}

// TestCheckpoint_NoSuspend covers the delays that sleep in their slot: a
// short one, one with a node timeout that ends before it, and any delay of
// a caller that cannot resume runs.
func TestCheckpoint_NoSuspend(t *testing.T) {
	t.Parallel()
	e, _ := suspendEngine(t)
	x := e.Execute(context.Background(), mustCompile(t, e, `{"nodes":[{"id":"a","type":"delay","duration":"20ms"}]}`),
		&orcheo.Run{ID: "r"}, orcheo.ExecuteOptions{Suspendable: true})
	if x.Err != nil || x.Suspended != nil || stepLines(x.Steps) != "1 a succeeded" {
		t.Fatalf("short delay: err %v, suspended %v, steps %s", x.Err, x.Suspended, stepLines(x.Steps))
	}
	// The node's 100 ms timeout falls before the delay's end, so the delay
	// sleeps and the timeout stops it, as without suspension.
	x = e.Execute(context.Background(), mustCompile(t, e, `{"nodes":[{"id":"a","type":"delay","duration":"1h","timeout":"100ms"}]}`),
		&orcheo.Run{ID: "r"}, orcheo.ExecuteOptions{Suspendable: true})
	if x.Suspended != nil || !strings.Contains(errText(x.Err), "timed out after 100ms") {
		t.Fatalf("delay beyond its node timeout: err %v, suspended %v", x.Err, x.Suspended)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	x = e.Execute(ctx, mustCompile(t, e, `{"nodes":[{"id":"a","type":"delay","duration":"1h"}]}`), &orcheo.Run{ID: "r"}, orcheo.ExecuteOptions{})
	if x.Suspended != nil || x.Err == nil {
		t.Fatalf("delay of a caller that cannot resume: err %v, suspended %v", x.Err, x.Suspended)
	}
}

// TestCheckpoint_Deadline shows that the run timeout counts from the first
// start across a suspension: the checkpoint carries the deadline, and a
// resume past it fails the run as timed out without running another node.
func TestCheckpoint_Deadline(t *testing.T) {
	t.Parallel()
	e, clock := suspendEngine(t)
	def := mustCompile(t, e, `{"timeout":"3h","nodes":[{"id":"wait","type":"delay","duration":"1h"},{"id":"b","type":"set","values":{"b":"1"}}]}`)
	x := e.Execute(context.Background(), def, &orcheo.Run{ID: "r", Attempt: 1}, orcheo.ExecuteOptions{Suspendable: true})
	if x.Suspended == nil {
		t.Fatalf("not suspended: err %v, steps %s", x.Err, stepLines(x.Steps))
	}
	var cp map[string]any
	if err := json.Unmarshal(x.Suspended.Checkpoint, &cp); err != nil {
		t.Fatal(err)
	}
	deadline, err := time.Parse(time.RFC3339Nano, cp["deadline"].(string))
	if err != nil || deadline.Before(time.Now().Add(2*time.Hour)) {
		t.Fatalf("checkpoint deadline = %v (%v)", cp["deadline"], err)
	}
	// As if the run had waited past its deadline before being resumed.
	cp["deadline"] = time.Now().Add(-time.Minute).Format(time.RFC3339Nano)
	late, _ := json.Marshal(cp)
	clock.advance(2 * time.Hour)
	x = e.Execute(context.Background(), def, &orcheo.Run{ID: "r", Attempt: 2}, orcheo.ExecuteOptions{Suspendable: true, Checkpoint: late})
	if !strings.Contains(errText(x.Err), "run timed out after 3h0m0s") || len(x.Steps) != 0 {
		t.Fatalf("resume past the deadline: err %v, steps %s", x.Err, stepLines(x.Steps))
	}
}

// TestCheckpoint_Early covers a resume before the delay's end (an early
// delivery): the run suspends again until the same time.
func TestCheckpoint_Early(t *testing.T) {
	t.Parallel()
	e, _ := suspendEngine(t)
	def := mustCompile(t, e, `{"nodes":[{"id":"wait","type":"delay","duration":"1h"},{"id":"b","type":"set","values":{"b":"1"}}]}`)
	x := e.Execute(context.Background(), def, &orcheo.Run{ID: "r", Attempt: 1}, orcheo.ExecuteOptions{Suspendable: true})
	if x.Suspended == nil {
		t.Fatalf("not suspended: %v", x.Err)
	}
	again := e.Execute(context.Background(), def, &orcheo.Run{ID: "r", Attempt: 2}, orcheo.ExecuteOptions{Suspendable: true, Checkpoint: x.Suspended.Checkpoint})
	if again.Err != nil || again.Suspended == nil || !again.Suspended.Until.Equal(x.Suspended.Until) || stepLines(again.Steps) != "1 wait waiting" {
		t.Fatalf("early resume: err %v, suspended %v, steps %s", again.Err, again.Suspended, stepLines(again.Steps))
	}
}

// TestCheckpoint_Invalid refuses a checkpoint it cannot use.
func TestCheckpoint_Invalid(t *testing.T) {
	t.Parallel()
	e, _ := suspendEngine(t)
	def := mustCompile(t, e, `{"nodes":[{"id":"a","type":"set","values":{"a":"1"}}]}`)
	for cp, want := range map[string]string{
		`{not json`:                     "checkpoint is not readable",
		`{"v":99}`:                      "checkpoint version 99",
		`{"v":1,"node":"gone","seq":1}`: `names node "gone"`,
	} {
		x := e.Execute(context.Background(), def, &orcheo.Run{ID: "r", Attempt: 2}, orcheo.ExecuteOptions{Checkpoint: json.RawMessage(cp)})
		if !strings.Contains(errText(x.Err), want) || len(x.Steps) != 0 {
			t.Errorf("checkpoint %s: err %v, want %q", cp, x.Err, want)
		}
	}
}

// jsonSame reports whether a and b encode the same value.
func jsonSame(tb testing.TB, a, b json.RawMessage) bool {
	tb.Helper()
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ca, _ := json.Marshal(va)
	cb, _ := json.Marshal(vb)
	return string(ca) == string(cb)
}
