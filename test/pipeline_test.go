package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/internal/testenv"
)

const greetWorkflow = `
nodes:
  - id: greet
    type: set
    values:
      message: '"hello, " + input.body.name'
  - id: say
    type: log
    message: 'steps.greet.output.message'
`

const failingWorkflow = `
nodes:
  - id: check
    type: fail
    message: '"no thanks"'
`

// stack is an api and a worker process on PostgreSQL and Redis.
type stack struct {
	url    string
	token  string
	env    []string
	client *client.Client
}

// startStack starts `orcheo api` and `orcheo worker` on a fresh database of
// the real PostgreSQL and the real Redis under a prefix of their own; extra
// is added to their environment (and to s.env, for the CLI and beats).
func startStack(t *testing.T, dbName string, extra ...string) *stack {
	t.Helper()
	dbURL := testenv.PostgresURL(t, dbName)
	redisURL := testenv.RedisURL(t)
	port := testenv.FreePort(t)
	s := &stack{url: fmt.Sprintf("http://127.0.0.1:%d", port), token: "e2e-" + randomSuffix()}
	s.env = []string{
		"ORCHEO_DATABASE_URL=" + dbURL,
		"REDIS_URL=" + redisURL,
		"ORCHEO_REDIS_PREFIX=orcheo-e2e-" + randomSuffix(),
		"ORCHEO_API_TOKEN=" + s.token,
		fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port),
		"ORCHEO_URL=" + s.url,
		"ORCHEO_TOKEN=" + s.token,
	}
	s.env = append(s.env, extra...)
	if out, code := cli(t, s.env, "migrate"); code != 0 {
		t.Fatalf("orcheo migrate: exit %d: %s", code, out)
	}
	api := startProcess(t, s.env, "api")
	startProcess(t, s.env, "worker", "--concurrency", "4", "--queues", "default")
	waitHealthy(t, api, s.url)
	s.client = client.New(s.url, s.token)
	return s
}

// waitRun waits until the run ends and returns it.
func waitRun(t *testing.T, c *client.Client, id string) *orcheo.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.WaitRun(ctx, id, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("wait for run %s: %v", id, err)
	}
	return run
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAPIAndWorker(t *testing.T) {
	s := startStack(t, "e2e_pipeline")
	ctx := context.Background()

	// Workflows are created through the CLI, as the README's walkthrough does.
	if out, code := cli(t, s.env, "workflows", "create", "-f", writeFile(t, "greet.yaml", greetWorkflow)); code != 0 {
		t.Fatalf("workflows create: exit %d: %s", code, out)
	}
	if out, code := cli(t, s.env, "workflows", "create", "-f", writeFile(t, "refuse.yaml", failingWorkflow)); code != 0 {
		t.Fatalf("workflows create: exit %d: %s", code, out)
	}

	t.Run("Webhook", func(t *testing.T) {
		// A disabled webhook accepts nothing.
		resp := postWebhook(t, s.url, "greet", `{"name":"Ada"}`)
		if resp.StatusCode == http.StatusAccepted {
			t.Fatalf("disabled webhook answered %d", resp.StatusCode)
		}
		if out, code := cli(t, s.env, "triggers", "webhook", "enable", "greet"); code != 0 {
			t.Fatalf("triggers webhook enable: exit %d: %s", code, out)
		}
		resp = postWebhook(t, s.url+"", "greet?source=e2e", `{"name":"Ada"}`)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook answered %d, want 202", resp.StatusCode)
		}
		// The public answer names the run and nothing of its content.
		var answer map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(answer) != 4 || answer["id"] == "" || answer["workflow"] != "greet" || answer["status"] != "pending" || answer["created_at"] == nil {
			t.Fatalf("webhook answered %v, want only id, status, workflow and created_at", answer)
		}
		created := orcheo.Run{ID: answer["id"].(string)}

		run := waitRun(t, s.client, created.ID)
		if run.Status != orcheo.RunSucceeded {
			t.Fatalf("run %s ended %s: %s", run.ID, run.Status, run.Error)
		}
		if len(run.Steps) != 2 || run.Steps[0].Node != "greet" || run.Steps[1].Node != "say" {
			t.Fatalf("steps = %+v, want greet then say", run.Steps)
		}
		if !strings.Contains(string(run.Output), "hello, Ada") {
			t.Fatalf("output = %s, want the greeting", run.Output)
		}
		var input struct {
			Body     map[string]string `json:"body"`
			Query    map[string]any    `json:"query"`
			SourceIP string            `json:"source_ip"`
		}
		if err := json.Unmarshal(run.Input, &input); err != nil {
			t.Fatalf("input %s: %v", run.Input, err)
		}
		if input.Body["name"] != "Ada" || input.Query["source"] == nil || input.SourceIP == "" {
			t.Fatalf("input = %s, want body, query and source_ip", run.Input)
		}

		out, code := cli(t, s.env, "runs", "show", run.ID)
		if code != 0 {
			t.Fatalf("runs show: exit %d: %s", code, out)
		}
		for _, want := range []string{run.ID, "succeeded", "greet", "say", "hello, Ada"} {
			if !strings.Contains(out, want) {
				t.Errorf("runs show output lacks %q:\n%s", want, out)
			}
		}
		out, code = cli(t, s.env, "runs", "list", "--workflow", "greet")
		if code != 0 || !strings.Contains(out, run.ID) || !strings.Contains(out, "greet ") || !strings.Contains(out, "webhook") {
			t.Fatalf("runs list: exit %d, want the run with its handle and trigger:\n%s", code, out)
		}
		out, code = cli(t, s.env, "runs", "list", "--workflow", "greet", "--status", "succeeded", "--json")
		if code != 0 {
			t.Fatalf("runs list: exit %d: %s", code, out)
		}
		var list struct {
			Runs    []*orcheo.Run `json:"runs"`
			HasMore bool          `json:"has_more"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("runs list --json: %v\n%s", err, out)
		}
		if len(list.Runs) != 1 || list.HasMore || list.Runs[0].ID != run.ID {
			t.Fatalf("runs list = %+v, want the one run", list)
		}
	})

	t.Run("RunWait", func(t *testing.T) {
		out, code := cli(t, s.env, "workflows", "run", "greet", "--input", `{"body":{"name":"Grace"}}`, "--wait")
		if code != 0 {
			t.Fatalf("workflows run --wait: exit %d: %s", code, out)
		}
		for _, want := range []string{"succeeded", "hello, Grace", "say"} {
			if !strings.Contains(out, want) {
				t.Errorf("workflows run --wait output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("FailingRun", func(t *testing.T) {
		out, code := cli(t, s.env, "workflows", "run", "refuse", "--wait")
		if code == 0 {
			t.Fatalf("workflows run --wait of a failing workflow exited 0:\n%s", out)
		}
		if !strings.Contains(out, "failed") || !strings.Contains(out, "no thanks") {
			t.Fatalf("output lacks the failure:\n%s", out)
		}
		runs, _, err := s.client.FindRuns(ctx, "refuse", "failed", 10)
		if err != nil || len(runs) != 1 {
			t.Fatalf("failed runs = %v, %v; want 1", runs, err)
		}
	})

	t.Run("Status", func(t *testing.T) {
		out, code := cli(t, s.env, "status")
		if code != 0 || !strings.Contains(out, "database") || !strings.Contains(out, "redis") {
			t.Fatalf("status: exit %d:\n%s", code, out)
		}
		// An API that does not answer is reported, with a non-zero exit.
		down := append(append([]string{}, s.env...), fmt.Sprintf("ORCHEO_URL=http://127.0.0.1:%d", testenv.FreePort(t)))
		if out, code := cli(t, down, "status"); code == 0 {
			t.Fatalf("status of a dead API exited 0:\n%s", out)
		}
	})

	t.Run("CLIErrors", func(t *testing.T) {
		out, code := cli(t, s.env, "runs", "show", "00000000-0000-7000-8000-000000000000")
		if code == 0 || !strings.Contains(out, "not found") {
			t.Fatalf("runs show of a missing run: exit %d: %s", code, out)
		}
		bad := append(append([]string{}, s.env...), "ORCHEO_TOKEN=wrong")
		if out, code := cli(t, bad, "runs", "list"); code == 0 {
			t.Fatalf("runs list with a wrong token exited 0: %s", out)
		}
	})
}

// postWebhook POSTs body to a workflow's webhook.
func postWebhook(t *testing.T, base, refAndQuery, body string) *http.Response {
	t.Helper()
	ref, query, _ := strings.Cut(refAndQuery, "?")
	url := base + "/api/workflows/" + ref + "/triggers/webhook"
	if query != "" {
		url += "?" + query
	}
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
