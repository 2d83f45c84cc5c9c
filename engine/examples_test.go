package engine_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
)

// exampleRuns gives the expected result of each example in examples/ for
// the input {"body": {"name": "Ada"}}. Every file there must have an entry,
// so a new example cannot slip in untested.
var exampleRuns = map[string]struct {
	output string
	err    string
}{
	"hello.yaml":        {output: `{"message":"hello, Ada"}`},
	"fail.yaml":         {output: `{"total":0}`, err: `node "reject": order total must be positive (got 0)`},
	"branch.yaml":       {output: `{"route":"domestic","tier":"small"}`},
	"health-check.yaml": {output: `{"healthy":true,"status":200}`},
	"slow.yaml":         {output: `{"done":true,"started":true}`},
	"parent.yaml":       {output: `{"child_said":"hello, Ada"}`},
}

// exampleStarter runs child runs of the examples in process, at once: the
// child's workflow is the example file of that handle.
type exampleStarter struct {
	tb     testing.TB
	engine func() *engine.Engine
	mu     sync.Mutex
	runs   map[string]*orcheo.Run
}

func (s *exampleStarter) StartChildRun(ctx context.Context, c orcheo.ChildRun) (*orcheo.Run, error) {
	src, err := os.ReadFile(filepath.Join("..", "examples", c.Workflow+".yaml"))
	if err != nil {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q not found", c.Workflow)
	}
	e := s.engine()
	def, err := e.Compile(src)
	if err != nil {
		return nil, err
	}
	r := &orcheo.Run{ID: "child-of-" + c.Parent.ID, Attempt: 1, TriggeredBy: orcheo.TriggerWorkflow, Input: c.Input}
	x := e.Execute(ctx, def, r, orcheo.ExecuteOptions{})
	r.Status, r.Output = orcheo.RunSucceeded, x.Output
	if x.Err != nil {
		r.Status, r.Error = orcheo.RunFailed, x.Err.Error()
	}
	s.mu.Lock()
	s.runs[r.ID] = r
	s.mu.Unlock()
	return r, nil
}

func (s *exampleStarter) FindRunByID(_ context.Context, id string) (*orcheo.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.runs[id]; ok {
		return r, nil
	}
	return nil, orcheo.Errorf(orcheo.ENOTFOUND, "run %q not found", id)
}

// examplesEngine is configured as an operator following the examples'
// comments would: ORCHEO_URL exposed (here a test server answering
// /healthz), loopback allowed, child runs started.
func examplesEngine(t *testing.T) *engine.Engine {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(srv.Close)
	starter := &exampleStarter{tb: t, runs: map[string]*orcheo.Run{}}
	var e *engine.Engine
	starter.engine = func() *engine.Engine { return e }
	e = loopbackEngine(t, engine.Options{Env: map[string]string{"ORCHEO_URL": srv.URL}, Runs: starter, ChildPollInterval: 10 * time.Millisecond})
	return e
}

// TestExamples compiles and executes every workflow in examples/.
func TestExamples(t *testing.T) {
	t.Parallel()
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml", "*.json"} {
		m, err := filepath.Glob(filepath.Join("..", "examples", pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	e := examplesEngine(t)
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, ok := exampleRuns[name]
			if !ok {
				t.Fatalf("add %s to exampleRuns", name)
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			def := mustCompile(t, e, string(src))
			if !json.Valid(def) {
				t.Fatalf("canonical form is not JSON: %s", def)
			}
			x := e.Execute(context.Background(), def, &orcheo.Run{ID: "r", Input: []byte(`{"body":{"name":"Ada"}}`)}, orcheo.ExecuteOptions{})
			if string(x.Output) != want.output {
				t.Errorf("output = %s, want %s", x.Output, want.output)
			}
			var gotErr string
			if x.Err != nil {
				gotErr = x.Err.Error()
			}
			if gotErr != want.err {
				t.Errorf("err = %q, want %q", gotErr, want.err)
			}
			if len(x.Steps) == 0 {
				t.Error("no steps recorded")
			}
		})
	}
}

// TestExampleBranchEU checks branch.yaml's other paths.
func TestExampleBranchEU(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("..", "examples", "branch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e := examplesEngine(t)
	for input, want := range map[string]string{
		`{"body":{"total":250,"country":"FR"}}`: `{"route":"eu","tier":"large"}`,
		`{"body":{"total":5,"country":"JP"}}`:   `{"route":"international","tier":"small"}`,
	} {
		x := e.Execute(context.Background(), mustCompile(t, e, string(src)), &orcheo.Run{Input: []byte(input)}, orcheo.ExecuteOptions{})
		if x.Err != nil || string(x.Output) != want {
			t.Errorf("input %s: output %s, err %v; want %s", input, x.Output, x.Err, want)
		}
	}
}

// TestExampleHelloWithoutName checks hello.yaml's fallback.
func TestExampleHelloWithoutName(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("..", "examples", "hello.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	for _, input := range []string{``, `{}`, `{"body":{}}`, `{"body":{"name":null}}`} {
		x := b.engine.Execute(context.Background(), mustCompile(t, b.engine, string(src)), &orcheo.Run{Input: []byte(input)}, orcheo.ExecuteOptions{})
		if x.Err != nil || string(x.Output) != `{"message":"hello, world"}` {
			t.Errorf("input %q: output %s, err %v", input, x.Output, x.Err)
		}
	}
}
