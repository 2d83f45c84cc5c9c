package engine_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/sirupsen/logrus"
)

// TestExecute_Nodes runs small workflows to completion and compares the
// output, the error and every step.
func TestExecute_Nodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		def     string
		input   string
		output  string
		err     string
		steps   []stepSummary
		logLine string
	}{
		{
			name:   "SetThenLog",
			def:    `{"nodes":[{"id":"greet","type":"set","values":{"message":"\"hello, \" + (input.body.name ?? \"world\")"}},{"id":"say","type":"log","message":"steps.greet.output.message"}]}`,
			input:  `{"body":{"name":"Ada"}}`,
			output: `{"message":"hello, Ada"}`,
			steps: []stepSummary{
				{"greet", "succeeded", `{"message":"hello, Ada"}`, ""},
				{"say", "succeeded", `{"message":"hello, Ada"}`, ""},
			},
			logLine: "hello, Ada",
		},
		{
			name:   "CoalesceWithoutBody",
			def:    `{"nodes":[{"id":"greet","type":"set","values":{"message":"\"hello, \" + (input.body.name ?? \"world\")"}}]}`,
			output: `{"message":"hello, world"}`,
			steps:  []stepSummary{{"greet", "succeeded", `{"message":"hello, world"}`, ""}},
		},
		{
			name:   "ExplicitOptionalChain",
			def:    `{"nodes":[{"id":"a","type":"set","values":{"v":"input?.body?.name"}}]}`,
			input:  `null`,
			output: `{"v":null}`,
			steps:  []stepSummary{{"a", "succeeded", `{"v":null}`, ""}},
		},
		{
			name:   "RunFields",
			def:    `{"nodes":[{"id":"a","type":"set","values":{"who":"run.id + \"/\" + run.workflow_id + \"/\" + run.triggered_by","next":"run.attempt + 1"}}]}`,
			output: `{"next":3,"who":"run-1/wf-1/webhook"}`,
			steps:  []stepSummary{{"a", "succeeded", `{"next":3,"who":"run-1/wf-1/webhook"}`, ""}},
		},
		{
			name: "StateMergesAndOverrides",
			def: `{"nodes":[
				{"id":"a","type":"set","values":{"x":"1","y":"\"first\""}},
				{"id":"b","type":"set","values":{"y":"state.y + \" then second\"","z":"state.x + steps.a.output.x"}}]}`,
			output: `{"x":1,"y":"first then second","z":2}`,
			steps: []stepSummary{
				{"a", "succeeded", `{"x":1,"y":"first"}`, ""},
				{"b", "succeeded", `{"y":"first then second","z":2}`, ""},
			},
		},
		{
			name:   "SetValuesSeeStateBeforeTheNode",
			def:    `{"nodes":[{"id":"a","type":"set","values":{"a":"1","b":"state.a ?? \"unset\""}}]}`,
			output: `{"a":1,"b":"unset"}`,
			steps:  []stepSummary{{"a", "succeeded", `{"a":1,"b":"unset"}`, ""}},
		},
		{
			name:    "LogOnlyHasEmptyOutput",
			def:     `{"nodes":[{"id":"say","type":"log","level":"warn","message":"{\"n\": len(input.items)}"}]}`,
			input:   `{"items":[1,2,3]}`,
			output:  `{}`,
			steps:   []stepSummary{{"say", "succeeded", `{"message":"{\"n\":3}"}`, ""}},
			logLine: `{"n":3}`,
		},
		{
			name: "FailStopsTheRun",
			def: `{"nodes":[
				{"id":"a","type":"set","values":{"total":"input.total"}},
				{"id":"stop","type":"fail","message":"\"total too small: \" + string(state.total)"},
				{"id":"never","type":"set","values":{"x":"1"}}]}`,
			input:  `{"total":0}`,
			output: `{"total":0}`,
			err:    `node "stop": total too small: 0`,
			steps: []stepSummary{
				{"a", "succeeded", `{"total":0}`, ""},
				{"stop", "failed", "", "total too small: 0"},
			},
		},
		{
			name:   "ExpressionRuntimeError",
			def:    `{"nodes":[{"id":"a","type":"set","values":{"v":"input.body.name"}}]}`,
			input:  `{}`,
			output: `{}`,
			err:    "node \"a\": field \"values.v\": cannot fetch name from <nil> (1:12) (expression `input.body.name`)",
			steps:  []stepSummary{{"a", "failed", "", "field \"values.v\": cannot fetch name from <nil> (1:12) (expression `input.body.name`)"}},
		},
		{
			name: "EdgesSetTheOrder",
			def: `{"nodes":[
				{"id":"c","type":"set","values":{"order":"state.order + \"c\""}},
				{"id":"b","type":"set","values":{"order":"state.order + \"b\""}},
				{"id":"a","type":"set","values":{"order":"\"a\""}}],
				"edges":[{"from":"a","to":"b"},{"from":"b","to":"c"}]}`,
			output: `{"order":"abc"}`,
			steps: []stepSummary{
				{"a", "succeeded", `{"order":"a"}`, ""},
				{"b", "succeeded", `{"order":"ab"}`, ""},
				{"c", "succeeded", `{"order":"abc"}`, ""},
			},
		},
		{
			name: "NextShorthand",
			def: `{"nodes":[
				{"id":"b","type":"set","values":{"order":"state.order + \"b\""}},
				{"id":"a","type":"set","values":{"order":"\"a\""},"next":"b"}]}`,
			output: `{"order":"ab"}`,
			steps: []stepSummary{
				{"a", "succeeded", `{"order":"a"}`, ""},
				{"b", "succeeded", `{"order":"ab"}`, ""},
			},
		},
		{
			name: "FanOutAndJoin",
			def: `{"nodes":[
				{"id":"join","type":"set","values":{"order":"state.order + \"+join\""}},
				{"id":"right","type":"set","values":{"order":"state.order + \"+right\""}},
				{"id":"left","type":"set","values":{"order":"state.order + \"+left\""}},
				{"id":"start","type":"set","values":{"order":"\"start\""}}],
				"edges":[{"from":"start","to":"left"},{"from":"start","to":"right"},{"from":"left","to":"join"},{"from":"right","to":"join"}]}`,
			output: `{"order":"start+right+left+join"}`,
			steps: []stepSummary{
				{"start", "succeeded", `{"order":"start"}`, ""},
				{"right", "succeeded", `{"order":"start+right"}`, ""},
				{"left", "succeeded", `{"order":"start+right+left"}`, ""},
				{"join", "succeeded", `{"order":"start+right+left+join"}`, ""},
			},
		},
		{
			name: "BranchSkipsUnreachedNodes",
			def: `{"nodes":[
				{"id":"pick","type":"branch","to":"input.go"},
				{"id":"yes","type":"set","values":{"path":"\"yes\""}},
				{"id":"no","type":"set","values":{"path":"\"no\""}},
				{"id":"after_no","type":"log","message":"\"only after no\""},
				{"id":"end","type":"log","message":"state.path"}],
				"edges":[{"from":"pick","to":"yes"},{"from":"pick","to":"no"},{"from":"no","to":"after_no"},{"from":"yes","to":"end"},{"from":"after_no","to":"end"}]}`,
			input:  `{"go":"yes"}`,
			output: `{"path":"yes"}`,
			steps: []stepSummary{
				{"pick", "succeeded", `{"chose":"yes"}`, ""},
				{"yes", "succeeded", `{"path":"yes"}`, ""},
				{"no", "skipped", "", ""},
				{"after_no", "skipped", "", ""},
				{"end", "succeeded", `{"message":"yes"}`, ""},
			},
		},
		{
			name:   "BranchToNonTargetFails",
			def:    `{"nodes":[{"id":"pick","type":"branch","to":"\"elsewhere\""},{"id":"a","type":"log","message":"1"}]}`,
			output: `{}`,
			err:    `node "pick": chose "elsewhere", which is not the target of an edge from this node`,
			steps:  []stepSummary{{"pick", "failed", "", `chose "elsewhere", which is not the target of an edge from this node`}},
		},
		{
			name:   "PanicRecovered",
			def:    `{"nodes":[{"id":"a","type":"set","values":{"x":"1"}},{"id":"p","type":"panic"},{"id":"c","type":"log","message":"1"}]}`,
			output: `{"x":1}`,
			err:    `node "p": panic: boom`,
			steps: []stepSummary{
				{"a", "succeeded", `{"x":1}`, ""},
				{"p", "failed", "", "panic: boom"},
			},
		},
		{
			name:   "OutputNotJSON",
			def:    `{"nodes":[{"id":"bad","type":"bad_output"}]}`,
			output: `{}`,
			err:    `node "bad": output is not JSON: json: unsupported type: chan int`,
			steps:  []stepSummary{{"bad", "failed", "", "output is not JSON: json: unsupported type: chan int"}},
		},
		{
			name:   "InvalidInput",
			def:    `{"nodes":[{"id":"a","type":"log","message":"1"}]}`,
			input:  `{not json`,
			output: `{}`,
			err:    "run input is not valid JSON",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			x := b.execute(t, context.Background(), tt.def, tt.input)
			if string(x.Output) != tt.output {
				t.Errorf("output = %s, want %s", x.Output, tt.output)
			}
			if tt.err == "" && x.Err != nil {
				t.Errorf("err = %v, want none", x.Err)
			} else if tt.err != "" && (x.Err == nil || !strings.HasPrefix(x.Err.Error(), tt.err)) {
				t.Errorf("err = %v, want %q", x.Err, tt.err)
			}
			if got := summarize(x.Steps); !reflect.DeepEqual(got, tt.steps) && (len(got) > 0 || len(tt.steps) > 0) {
				t.Errorf("steps:\n got %+v\nwant %+v", got, tt.steps)
			}
			if tt.logLine != "" {
				var found bool
				for _, entry := range b.logs.AllEntries() {
					if entry.Message == tt.logLine {
						found = true
						if entry.Data["run_id"] != "run-1" || entry.Data["workflow_id"] != "wf-1" || entry.Data["component"] != "engine" {
							t.Errorf("log fields = %v", entry.Data)
						}
					}
				}
				if !found {
					t.Errorf("no log line %q", tt.logLine)
				}
			}
		})
	}
}

// TestExecute_StepFields checks every field of the recorded steps, with the
// clock the engine holds.
func TestExecute_StepFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := b.execute(t, context.Background(), `{"nodes":[{"id":"a","type":"set","values":{"x":"1"}},{"id":"b","type":"log","level":"debug","message":"\"done\""}]}`, "")
	if x.Err != nil {
		t.Fatal(x.Err)
	}
	at := func(s int) *time.Time { v := clockStart.Add(time.Duration(s) * time.Second); return &v }
	want := []*orcheo.RunStep{
		{RunID: "run-1", Attempt: 2, Seq: 1, Node: "a", NodeType: "set", Status: orcheo.StepSucceeded, NodeAttempt: 1, Output: []byte(`{"x":1}`), StartedAt: *at(0), CompletedAt: at(1)},
		{RunID: "run-1", Attempt: 2, Seq: 2, Node: "b", NodeType: "log", Status: orcheo.StepSucceeded, NodeAttempt: 1, Output: []byte(`{"message":"done"}`), StartedAt: *at(2), CompletedAt: at(3)},
	}
	if !reflect.DeepEqual(x.Steps, want) {
		for i := range x.Steps {
			t.Errorf("step %d: %+v", i, *x.Steps[i])
		}
	}
	entry := b.logs.LastEntry()
	if entry == nil || entry.Message != "node succeeded" {
		t.Fatalf("last log entry = %+v", entry)
	}
	var sawDebugMessage bool
	for _, e := range b.logs.AllEntries() {
		if e.Message == "done" {
			sawDebugMessage = e.Level == logrus.DebugLevel && e.Data["node"] == "b"
		}
	}
	if !sawDebugMessage {
		t.Error("log node did not log at debug with its node field")
	}
}

// TestExecute_Timeouts checks that a run timeout and a node timeout stop
// a node that waits on its context and one that ignores it, and that no
// later node starts.
func TestExecute_Timeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		def   string
		err   string
		steps []stepSummary
	}{
		{
			name: "RunTimeout",
			def:  `{"timeout":"50ms","nodes":[{"id":"a","type":"set","values":{"x":"1"}},{"id":"wait","type":"block"},{"id":"after","type":"log","message":"1"}]}`,
			err:  `node "wait": run timed out after 50ms`,
			steps: []stepSummary{
				{"a", "succeeded", `{"x":1}`, ""},
				{"wait", "failed", "", "run timed out after 50ms"},
			},
		},
		{
			name:  "NodeTimeout",
			def:   `{"nodes":[{"id":"wait","type":"block","timeout":"20ms"},{"id":"after","type":"log","message":"1"}]}`,
			err:   `node "wait": timed out after 20ms`,
			steps: []stepSummary{{"wait", "failed", "", "timed out after 20ms"}},
		},
		{
			name:  "NodeTimeoutIgnoredByNode",
			def:   `{"nodes":[{"id":"stuck","type":"block","ignore_ctx":true,"timeout":"20ms"},{"id":"after","type":"log","message":"1"}]}`,
			err:   `node "stuck": timed out after 20ms, and the node did not stop within 2s of it`,
			steps: []stepSummary{{"stuck", "failed", "", "timed out after 20ms, and the node did not stop within 2s of it"}},
		},
		{
			name:  "RunTimeoutShorterThanNodeTimeout",
			def:   `{"timeout":"20ms","nodes":[{"id":"wait","type":"block","timeout":"1h"}]}`,
			err:   `node "wait": run timed out after 20ms`,
			steps: []stepSummary{{"wait", "failed", "", "run timed out after 20ms"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			x := b.execute(t, context.Background(), tt.def, "")
			if x.Err == nil || x.Err.Error() != tt.err {
				t.Fatalf("err = %v, want %q", x.Err, tt.err)
			}
			if !errors.Is(x.Err, context.DeadlineExceeded) {
				t.Errorf("err %v does not wrap context.DeadlineExceeded", x.Err)
			}
			var nodeErr *engine.NodeError
			if !errors.As(x.Err, &nodeErr) {
				t.Errorf("err %T is not a *NodeError", x.Err)
			}
			if got := summarize(x.Steps); !reflect.DeepEqual(got, tt.steps) {
				t.Errorf("steps:\n got %+v\nwant %+v", got, tt.steps)
			}
		})
	}
}

// TestExecute_Cancel checks cancellation before the first node, while a
// node runs, and with a cause.
func TestExecute_Cancel(t *testing.T) {
	t.Parallel()
	const def = `{"nodes":[{"id":"a","type":"set","values":{"x":"1"}},{"id":"wait","type":"block"},{"id":"after","type":"log","message":"1"}]}`

	t.Run("BeforeStart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		x := b.execute(t, ctx, def, "")
		if x.Err == nil || x.Err.Error() != `cancelled before node "a"` || !errors.Is(x.Err, context.Canceled) {
			t.Fatalf("err = %v", x.Err)
		}
		if len(x.Steps) != 0 || string(x.Output) != "{}" {
			t.Errorf("steps = %v, output = %s", summarize(x.Steps), x.Output)
		}
	})

	t.Run("WhileRunning", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-b.block.started
			cancel()
		}()
		x := b.execute(t, ctx, def, "")
		if x.Err == nil || x.Err.Error() != `node "wait": cancelled` || !errors.Is(x.Err, context.Canceled) {
			t.Fatalf("err = %v", x.Err)
		}
		want := []stepSummary{{"a", "succeeded", `{"x":1}`, ""}, {"wait", "failed", "", "cancelled"}}
		if got := summarize(x.Steps); !reflect.DeepEqual(got, want) {
			t.Errorf("steps = %+v", got)
		}
		if string(x.Output) != `{"x":1}` {
			t.Errorf("output = %s", x.Output)
		}
	})

	t.Run("WithCause", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancelCause(context.Background())
		byOperator := errors.New("cancelled by operator")
		go func() {
			<-b.block.started
			cancel(byOperator)
		}()
		x := b.execute(t, ctx, def, "")
		if x.Err == nil || x.Err.Error() != `node "wait": cancelled: cancelled by operator` {
			t.Fatalf("err = %v", x.Err)
		}
		if !errors.Is(x.Err, context.Canceled) || !errors.Is(x.Err, byOperator) {
			t.Errorf("err %v does not wrap both context.Canceled and the cause", x.Err)
		}
	})

	t.Run("CallerDeadline", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		x := b.execute(t, ctx, def, "")
		if x.Err == nil || x.Err.Error() != `node "wait": timed out` || !errors.Is(x.Err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", x.Err)
		}
	})
}

// TestExecute_InvalidDefinition checks that a stored definition that does
// not compile fails the run instead of panicking.
func TestExecute_InvalidDefinition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, def := range []string{``, `{"nodes":[{"id":"a","type":"gone"}]}`, `not: [valid`} {
		x := b.engine.Execute(context.Background(), []byte(def), &orcheo.Run{ID: "r"}, orcheo.ExecuteOptions{})
		if x.Err == nil || !strings.HasPrefix(x.Err.Error(), "invalid definition: ") {
			t.Errorf("Execute(%q) err = %v", def, x.Err)
		}
		if orcheo.ErrorCode(x.Err) != orcheo.EINVALID || len(x.Steps) != 0 || string(x.Output) != "{}" {
			t.Errorf("Execute(%q) = code %q, %d steps, output %s", def, orcheo.ErrorCode(x.Err), len(x.Steps), x.Output)
		}
	}
}

// TestExecute_NilRun checks that a nil run is treated as an empty one.
func TestExecute_NilRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := mustCompile(t, b.engine, `{"nodes":[{"id":"a","type":"set","values":{"id":"run.id"}}]}`)
	x := b.engine.Execute(context.Background(), c, nil, orcheo.ExecuteOptions{})
	if x.Err != nil || string(x.Output) != `{"id":""}` {
		t.Fatalf("output %s, err %v", x.Output, x.Err)
	}
}

// TestExecute_Concurrent runs one definition from many goroutines, for the
// race detector and the compiled-definition cache.
func TestExecute_Concurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := mustCompile(t, b.engine, `{"nodes":[{"id":"a","type":"set","values":{"n":"input.n * 2"}},{"id":"b","type":"log","message":"string(state.n)"}]}`)
	errs := make(chan error, 20)
	for i := 0; i < cap(errs); i++ {
		go func() {
			x := b.engine.Execute(context.Background(), c, &orcheo.Run{Input: []byte(`{"n":21}`)}, orcheo.ExecuteOptions{})
			if x.Err == nil && string(x.Output) != `{"n":42}` {
				x.Err = errors.New("output " + string(x.Output))
			}
			errs <- x.Err
		}()
	}
	for i := 0; i < cap(errs); i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
