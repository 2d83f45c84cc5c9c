package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/orcheo/orcheo"
)

// uiBranchWorkflow takes one of two branches by its input.
const uiBranchWorkflow = `
description: routes an order by its size
nodes:
  - id: receive
    type: set
    values:
      amount: 'input.amount ?? 0'
    next: size
  - id: size
    type: if
    condition: 'state.amount > 100'
    then: review
    else: approve
  - id: review
    type: log
    message: '"needs a review"'
    next: notify
  - id: approve
    type: set
    values:
      approved: 'true'
    next: notify
  - id: notify
    type: log
    message: '"done"'
`

// TestUI_WorkflowsSystemBulk drives the workflow page (its graph with a
// run's path, its next cron slots, run now), the bulk retry of three
// failed runs and the system page (a worker and the run it executes) in
// headless chromium against orcheo api and worker on PostgreSQL and Redis.
func TestUI_WorkflowsSystemBulk(t *testing.T) {
	ctx := startChromium(t)
	s := startStack(t, "e2e_ui_wf")
	mustCLI(t, s.env, "workflows", "create", "-f", writeFile(t, "ui-branch.yaml", uiBranchWorkflow))
	mustCLI(t, s.env, "workflows", "create", "-f", writeFile(t, "ui-slow.yaml", uiSlowWorkflow))
	mustCLI(t, s.env, "workflows", "create", "-f", writeFile(t, "ui-refuse.yaml", failingWorkflow))
	mustCLI(t, s.env, "triggers", "cron", "set", "ui-branch", "--expression", "0 9 * * *", "--timezone", "Europe/Paris")

	run(t, ctx, "sign in",
		chromedp.Navigate(s.url+"/ui/workflows"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), s.token),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS("table.workflows")))
	waitJS(t, ctx, "the workflows listed", `document.querySelectorAll("tr[data-workflow]").length === 3`, 5*time.Second)
	screenshot(t, ctx, "workflows")

	// Run now from the page: bad JSON is refused with a message, good
	// JSON starts a run, which takes the "review" branch.
	run(t, ctx, "open the workflow", chromedp.Click(chromedp.CSS(`a[href="/ui/workflows/ui-branch"]`)), chromedp.WaitVisible(chromedp.ID("graph")))
	run(t, ctx, "run now with bad JSON",
		chromedp.SetValue(chromedp.ID("run-input"), `{"amount": 250`),
		chromedp.Click(chromedp.ID("run-now")),
		chromedp.WaitVisible(chromedp.ID("run-now-error")))
	if msg := eval[string](t, ctx, "the refusal", `document.getElementById("run-now-error").textContent`); !strings.Contains(msg, "not valid JSON") {
		t.Fatalf("bad JSON refused with %q", msg)
	}
	run(t, ctx, "run now",
		chromedp.SetValue(chromedp.ID("run-input"), `{"amount": 250}`),
		chromedp.Click(chromedp.ID("run-now")),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	runID := eval[string](t, ctx, "the run's id", `location.pathname.split("/").pop()`)
	if got := waitRun(t, s.client, runID); got.Status != orcheo.RunSucceeded || got.TriggeredBy != orcheo.TriggerManual {
		t.Fatalf("the run started from the page: %s by %s", got.Status, got.TriggeredBy)
	}

	// The graph of its version, with the path the run took marked, and
	// the cron schedule's next five slots at 09:00 Paris time.
	run(t, ctx, "open the graph of the run", chromedp.Navigate(s.url+"/ui/workflows/ui-branch?run="+runID), chromedp.WaitVisible(chromedp.ID("graph")))
	if n := eval[int](t, ctx, "count nodes", `document.querySelectorAll("svg#graph g.node").length`); n != 5 {
		t.Fatalf("the graph shows %d nodes, want 5", n)
	}
	if n := eval[int](t, ctx, "count edges", `document.querySelectorAll("svg#graph g.edge").length`); n != 5 {
		t.Fatalf("the graph shows %d edges, want 5", n)
	}
	taken := eval[string](t, ctx, "taken nodes", `Array.from(document.querySelectorAll("svg#graph g.node.taken")).map(g => g.dataset.node).join(",")`)
	if taken != "receive,size,review,notify" {
		t.Fatalf("taken nodes %q, want receive,size,review,notify", taken)
	}
	takenEdges := eval[string](t, ctx, "taken edges", `Array.from(document.querySelectorAll("svg#graph g.edge.taken")).map(g => g.dataset.from + ">" + g.dataset.to).join(",")`)
	if takenEdges != "receive>size,size>review,review>notify" {
		t.Fatalf("taken edges %q", takenEdges)
	}
	// The boxes are laid out: no two nodes overlap, and the graph is wide
	// enough to be seen.
	visible := eval[bool](t, ctx, "graph drawn", `(() => {
		const r = Array.from(document.querySelectorAll("svg#graph g.node rect")).map(e => e.getBoundingClientRect());
		for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) {
			const a = r[i], b = r[j];
			if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) return false;
		}
		return r.every(x => x.width > 40 && x.height > 10);
	})()`)
	if !visible {
		t.Fatal("the graph's nodes overlap or are not drawn")
	}
	slots := eval[[]string](t, ctx, "cron slots", `Array.from(document.querySelectorAll("#cron-slots time")).map(e => e.textContent)`)
	if len(slots) != 5 {
		t.Fatalf("next cron slots %v, want 5", slots)
	}
	for _, sl := range slots {
		if !strings.Contains(sl, " 09:00:00 ") || !(strings.HasSuffix(sl, "CET") || strings.HasSuffix(sl, "CEST")) {
			t.Fatalf("slot %q is not 09:00 Paris time", sl)
		}
	}
	screenshot(t, ctx, "workflow")

	// Bulk retry: three failed runs selected on the runs page, confirmed,
	// each reaches attempt 2.
	var failed []string
	for i := 0; i < 3; i++ {
		failed = append(failed, startRunID(t, s, "ui-refuse"))
	}
	for _, id := range failed {
		if got := waitRun(t, s.client, id); got.Status != orcheo.RunFailed {
			t.Fatalf("run %s: %s, want failed", id, got.Status)
		}
	}
	run(t, ctx, "open the failed runs", chromedp.Navigate(s.url+"/ui/runs?workflow=ui-refuse&status=failed"),
		chromedp.WaitVisible(chromedp.ID("select-all")))
	waitJS(t, ctx, "three rows", `document.querySelectorAll('#runs-body input[name="id"]').length === 3`, 10*time.Second)
	run(t, ctx, "select all", chromedp.Click(chromedp.ID("select-all")))
	waitJS(t, ctx, "three selected", `document.getElementById("bulk-count").textContent === "3 runs selected."`, 5*time.Second)
	screenshot(t, ctx, "runs-bulk")
	run(t, ctx, "retry selected", chromedp.Click(chromedp.ID("bulk-retry")), chromedp.WaitVisible(chromedp.ID("bulk-confirm")))
	if n := eval[int](t, ctx, "confirm rows", `document.querySelectorAll('#bulk-runs tr[data-outcome="will be retried"]').length`); n != 3 {
		t.Fatalf("the confirmation lists %d runs to retry, want 3", n)
	}
	screenshot(t, ctx, "runs-bulk-confirm")
	for _, id := range failed {
		if got, err := s.client.FindRunByID(context.Background(), id); err != nil || got.Attempt != 1 {
			t.Fatalf("before the confirmation run %s: %+v %v", id, got, err)
		}
	}
	run(t, ctx, "confirm", chromedp.Click(chromedp.ID("bulk-confirm")), chromedp.WaitVisible(chromedp.ID("bulk-back")))
	if n := eval[int](t, ctx, "retried rows", `document.querySelectorAll('#bulk-runs tr[data-outcome="retried"]').length`); n != 3 {
		t.Fatalf("%d runs shown retried, want 3", n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range failed {
		for {
			got, err := s.client.FindRunByID(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if got.Attempt == 2 && got.Status == orcheo.RunFailed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s after the bulk retry: attempt %d %s, want attempt 2 executed (failed again)", id, got.Attempt, got.Status)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The system page: the worker, and the run it executes now.
	slow := startRunID(t, s, "ui-slow")
	deadline = time.Now().Add(15 * time.Second)
	for {
		got, err := s.client.FindRunByID(context.Background(), slow)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == orcheo.RunRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow run is %s, not running", got.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The worker's record lists its runs on its next heartbeat.
	deadline = time.Now().Add(15 * time.Second)
	for {
		run(t, ctx, "open the system page", chromedp.Navigate(s.url+"/ui/system"), chromedp.WaitVisible(chromedp.ID("h-workers")))
		if eval[bool](t, ctx, "the worker's run", fmt.Sprintf(`document.querySelector('article[data-worker] tr[data-run="%s"]') !== null`, slow)) {
			break
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("the system page does not show the worker running %s:\n%s", slow, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n := eval[int](t, ctx, "queues", `document.querySelectorAll('#queues tr[data-queue="default"]').length`); n != 1 {
		t.Fatal("the system page shows no depth of the default queue")
	}
	counts := eval[map[string]string](t, ctx, "chart", `Object.fromEntries(Array.from(document.querySelectorAll("#day-chart g.bar")).map(g => [g.dataset.status, g.dataset.count]))`)
	if counts["failed"] != "3" || counts["succeeded"] != "1" || counts["running"] != "1" {
		t.Fatalf("the chart's counts %v, want 3 failed, 1 succeeded, 1 running", counts)
	}
	screenshot(t, ctx, "system")
	run(t, ctx, "system on a phone", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("h-workers")))
	screenshot(t, ctx, "system-phone")
	run(t, ctx, "laptop width", chromedp.EmulateViewport(1280, 900))

	// Stop the slow run rather than leave it to the stack's end.
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/runs/"+slow+"/cancel", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		var out json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
	}
}
