package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
)

// TestDev runs `orcheo dev` alone, as a first-time user does: it needs no
// service, installs the example workflows, and the banner's curl works.
func TestDev(t *testing.T) {
	dataDir := t.TempDir()
	port := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := []string{"ORCHEO_DATA_DIR=" + dataDir, fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port), "ORCHEO_URL=" + url}

	dev := startProcess(t, env, "dev")
	waitHealthy(t, dev, url)
	waitOutput(t, dev, "Trigger the example workflow")
	if !strings.Contains(dev.out.String(), url+"/api/workflows/hello/triggers/webhook") {
		t.Fatalf("banner lacks the example curl:\n%s", dev.out.String())
	}

	resp, err := http.Post(url+"/api/workflows/hello/triggers/webhook", "application/json", strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created orcheo.Run
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := client.New(url, "")
	run := waitRun(t, c, created.ID)
	if run.Status != orcheo.RunSucceeded || !strings.Contains(string(run.Output), "Ada") {
		t.Fatalf("run ended %s with output %s (error %q)", run.Status, run.Output, run.Error)
	}
	out, code := cli(t, env, "runs", "show", run.ID)
	if code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("runs show: exit %d:\n%s", code, out)
	}
	out, code = cli(t, env, "workflows", "run", "hello", "--input", `{"body":{"name":"Lin"}}`, "--wait")
	if code != 0 || !strings.Contains(out, "Lin") {
		t.Fatalf("workflows run --wait: exit %d:\n%s", code, out)
	}

	// A run left pending while dev is down is executed after a restart: the
	// in-process Redis is new, so dev must enqueue it again.
	dev.stop(t, 20*time.Second)
	ctx := context.Background()
	store, err := db.Open(ctx, "sqlite:"+filepath.Join(dataDir, "orcheo.db"))
	if err != nil {
		t.Fatal(err)
	}
	wf, err := store.Workflows.FindWorkflowByRef(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	pending := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, Queue: wf.Queue,
		TriggeredBy: orcheo.TriggerManual, Input: json.RawMessage(`{"body":{"name":"Restart"}}`)}
	if _, _, err := store.Runs.CreateRun(ctx, pending); err != nil {
		t.Fatal(err)
	}
	store.Close()

	dev = startProcess(t, env, "dev")
	waitHealthy(t, dev, url)
	run = waitRun(t, c, pending.ID)
	if run.Status != orcheo.RunSucceeded || !strings.Contains(string(run.Output), "Restart") {
		t.Fatalf("pending run after restart ended %s with output %s", run.Status, run.Output)
	}
}

// waitOutput waits until the process has printed want.
func waitOutput(t *testing.T, p *process, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.out.String(), want) {
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("orcheo %s never printed %q:\n%s", p.name, want, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
