package test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/testenv"
)

// engineEnv is what an operator sets to run every example in examples/:
// health-check.yaml reads env.ORCHEO_URL and calls loopback.
var engineEnv = []string{"ORCHEO_WORKFLOW_ENV=ORCHEO_URL", "ORCHEO_HTTP_ALLOW_CIDRS=127.0.0.0/8"}

// exampleOutputs is each example's output for input {"body":{"name":"Ada"}},
// as docs/workflows.md and the examples' comments state; "" marks the one
// that fails on purpose.
var exampleOutputs = map[string]string{
	"hello":        `{"message":"hello, Ada"}`,
	"fail":         ``,
	"branch":       `{"route":"domestic","tier":"small"}`,
	"health-check": `{"healthy":true,"status":200}`,
	"slow":         `{"done":true,"started":true}`,
	"parent":       `{"child_said":"hello, Ada"}`,
}

// exampleFiles returns the example workflow files by handle.
func exampleFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	out := map[string]string{}
	for _, p := range paths {
		handle := strings.TrimSuffix(filepath.Base(p), ".yaml")
		if _, ok := exampleOutputs[handle]; !ok {
			t.Fatalf("add %s to exampleOutputs", handle)
		}
		out[handle] = p
	}
	return out
}

// startEngineStack is startStack with the operator settings the examples
// need (engineEnv) on the api and worker processes.
func startEngineStack(t *testing.T, dbName string) *stack {
	t.Helper()
	return startStack(t, dbName, engineEnv...)
}

// runExamples runs every example through the CLI with --wait --json and
// compares its output with exampleOutputs.
func runExamples(t *testing.T, env []string, files map[string]string) {
	t.Helper()
	handles := make([]string, 0, len(files))
	for h := range files {
		handles = append(handles, h)
	}
	sort.Strings(handles)
	for _, h := range handles {
		out, code := cli(t, env, "workflows", "run", h, "--input", `{"body":{"name":"Ada"}}`, "--wait", "--json", "--timeout", "90s")
		// A failed run's JSON is followed by the CLI's error line.
		var run orcheo.Run
		if err := json.NewDecoder(strings.NewReader(out)).Decode(&run); err != nil {
			t.Errorf("%s: workflows run: exit %d, not JSON: %v\n%s", h, code, err, out)
			continue
		}
		want := exampleOutputs[h]
		if want == "" {
			if code == 0 || run.Status != orcheo.RunFailed || !strings.Contains(run.Error, "order total must be positive") {
				t.Errorf("%s: exit %d, status %s, error %q; want a failed run", h, code, run.Status, run.Error)
			}
			continue
		}
		if code != 0 || run.Status != orcheo.RunSucceeded || !jsonSame(t, run.Output, want) {
			t.Errorf("%s: exit %d, status %s, output %s, error %q; want output %s", h, code, run.Status, run.Output, run.Error, want)
		}
	}
}

func jsonSame(t *testing.T, a json.RawMessage, b string) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// TestEngineOnAPIAndWorker uploads every example through the CLI after
// validating it offline, runs each through api + worker on PostgreSQL and
// Redis, and watches a running run's steps in `orcheo runs show`.
func TestEngineOnAPIAndWorker(t *testing.T) {
	s := startEngineStack(t, "e2e_engine")
	files := exampleFiles(t)
	for h, path := range files {
		if out, code := cli(t, nil, "workflows", "validate", "-f", path); code != 0 || !strings.Contains(out, "valid") {
			t.Fatalf("workflows validate %s: exit %d: %s", h, code, out)
		}
		if out, code := cli(t, s.env, "workflows", "create", "-f", path); code != 0 {
			t.Fatalf("workflows create %s: exit %d: %s", h, code, out)
		}
	}

	t.Run("ValidateRejects", func(t *testing.T) {
		bad := writeFile(t, "bad.yaml", "nodes:\n  - id: a\n    type: if\n    condition: 'true'\n    then: nowhere\n")
		out, code := cli(t, nil, "workflows", "validate", "-f", bad)
		if code == 0 || !strings.Contains(out, `node "a": field "then": unknown node "nowhere"`) {
			t.Fatalf("validate of a dangling branch: exit %d: %s", code, out)
		}
		// The API runs the same checks: 400 naming node and field, nothing stored.
		out, code = cli(t, s.env, "workflows", "create", "-f", bad)
		if code == 0 || !strings.Contains(out, `node "a": field "then": unknown node "nowhere"`) {
			t.Fatalf("create of a dangling branch: exit %d: %s", code, out)
		}
	})

	t.Run("StepsWhileRunning", func(t *testing.T) {
		out, code := cli(t, s.env, "workflows", "run", "slow", "--json")
		var run orcheo.Run
		if code != 0 || json.Unmarshal([]byte(out), &run) != nil {
			t.Fatalf("workflows run slow: exit %d: %s", code, out)
		}
		// While the delay node waits, the run is running and shows the
		// finished first step and the running delay.
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, code = cli(t, s.env, "runs", "show", run.ID)
			if code == 0 && strings.Contains(out, "Status    running") && stepLine(out, "start", "succeeded") && stepLine(out, "wait", "running") {
				break
			}
			if time.Now().After(deadline) || strings.Contains(out, "Status    succeeded") {
				t.Fatalf("never saw the running run's steps:\n%s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		done := waitRun(t, s.client, run.ID)
		if done.Status != orcheo.RunSucceeded || len(done.Steps) != 3 {
			t.Fatalf("run ended %s with %d steps", done.Status, len(done.Steps))
		}
		for _, st := range done.Steps {
			if st.Status != orcheo.StepSucceeded || st.CompletedAt == nil {
				t.Fatalf("step %+v not finished", st)
			}
		}
	})

	t.Run("Examples", func(t *testing.T) { runExamples(t, s.env, files) })

	t.Run("ChildRun", func(t *testing.T) {
		runs, _, err := s.client.FindRuns(t.Context(), "hello", "", 50)
		if err != nil {
			t.Fatal(err)
		}
		var child bool
		for _, r := range runs {
			child = child || r.TriggeredBy == orcheo.TriggerWorkflow
		}
		if !child {
			t.Fatalf("no run of hello triggered by a workflow among %d runs", len(runs))
		}
	})
}

// stepLine reports whether `runs show` output has a step row for node with
// status.
func stepLine(out, node, status string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[2] == node && f[4] == status {
			return true
		}
	}
	return false
}

// TestEngineExamplesOnDev runs every example through `orcheo dev`, which
// installs them itself.
func TestEngineExamplesOnDev(t *testing.T) {
	port := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := append([]string{"ORCHEO_DATA_DIR=" + t.TempDir(), fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port), "ORCHEO_URL=" + url}, engineEnv...)
	dev := startProcess(t, env, "dev")
	waitHealthy(t, dev, url)
	waitOutput(t, dev, "Trigger the example workflow")
	runExamples(t, env, exampleFiles(t))
}
