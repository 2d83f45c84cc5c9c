package ui_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

func TestSystemPage(t *testing.T) {
	e := newEnv(t)
	running := e.newRun(t, `{}`)
	e.claim(t, running.ID)
	e.fail(t, e.newRun(t, `{}`).ID)
	e.fail(t, e.newRun(t, `{}`).ID)
	e.newRun(t, `{}`) // pending, due
	now := time.Now().UTC()
	e.workers.workers = []*orcheo.WorkerInfo{{Name: "worker-a", ID: "w-1", Host: "host-a", PID: 42, State: orcheo.WorkerOnline,
		Queues: []string{"default", "bulk", "{evil}:x"}, Concurrency: 4, StartedAt: now, LastHeartbeat: now,
		Active: []orcheo.ActiveRun{{RunID: running.ID, WorkflowID: e.wf.ID, Queue: "default", Attempt: 1, Since: now}}}}
	e.depths.ready = 7
	tr := &orcheo.CronTrigger{WorkflowID: e.wf.ID, Expression: "*/5 * * * *", Timezone: "UTC"}
	if err := e.store.Cron.SetCronTrigger(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	slot := now.Truncate(5 * time.Minute)
	if err := e.store.Cron.MarkCronDispatched(context.Background(), e.wf.ID, slot); err != nil {
		t.Fatal(err)
	}

	b := e.browser(t)
	b.login(readToken) // a read token sees it all
	a := b.get("/ui/system")
	if a.status != http.StatusOK {
		t.Fatalf("system page: %d %s", a.status, a.body)
	}
	for _, want := range []string{
		`data-queue="default"`, `data-queue="bulk"`, `<td class="num">7</td>`,
		`data-worker="worker-a"`, `href="/ui/runs/` + running.ID + `"`, "1 of 4 slots busy",
		"held by <span class=\"mono\">beat-host-1</span>", "Last dispatched slot</dt><dd>" + slot.Format("2006-01-02 15:04:05Z"),
		"<dt>Pending runs</dt><dd>1</dd>", "<dt>Running runs</dt><dd>1</dd>", "waiting ",
		`data-status="failed" data-count="2"`, `data-status="running" data-count="1"`, `data-status="pending" data-count="1"`,
		`data-status="succeeded" data-count="0"`, "4 runs created",
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("system page lacks %q", want)
		}
	}
	// A worker record's queue is never used as a Redis key unchecked.
	e.depths.mu.Lock()
	asked := slices.Clone(e.depths.asked)
	e.depths.mu.Unlock()
	if slices.Contains(asked, "{evil}:x") || !slices.Contains(asked, "bulk") || !slices.Contains(asked, "default") {
		t.Errorf("queue depths asked for %v", asked)
	}
	// The failed bar is twice the running one.
	w := map[string]int{}
	for _, m := range regexp.MustCompile(`data-status="(\w+)" data-count="\d+">\s*<text[^>]*>[^<]*</text>\s*<rect x="\d+" y="\d+" width="(\d+)"`).FindAllStringSubmatch(a.body, -1) {
		var n int
		fmt.Sscan(m[2], &n)
		w[m[1]] = n
	}
	if w["failed"] == 0 || w["failed"] != 2*w["running"] || w["succeeded"] != 0 {
		t.Errorf("bar widths = %v, want failed twice running and succeeded 0", w)
	}

	// A part that fails says so; the rest of the page is still there.
	e.workers.mu.Lock()
	e.workers.err = orcheo.Errorf(orcheo.EUNAVAILABLE, "redis is down")
	e.workers.mu.Unlock()
	e.depths.mu.Lock()
	e.depths.failed = errors.New("dial tcp: refused")
	e.depths.mu.Unlock()
	a = b.get("/ui/system")
	if a.status != http.StatusOK || !strings.Contains(a.body, "Could not read the workers: redis is down") ||
		!strings.Contains(a.body, "Could not read the queue depths; the error has been logged.") || !strings.Contains(a.body, `id="day-chart"`) {
		t.Errorf("system page with Redis down: %d %s", a.status, a.body)
	}
	if strings.Contains(a.body, "dial tcp") {
		t.Error("the page shows an internal error's text")
	}
}

// TestSystemPage_NotConfigured: without the optional services each part
// says it is not available, and the page still answers.
func TestSystemPage_NotConfigured(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *cfgAlias) {
		c.Workers, c.Queues, c.RunStats, c.RunCounts, c.BeatLeader, c.Cron, c.CronScheduler, c.Triggers = nil, nil, nil, nil, nil, nil, nil, nil
	}})
	b := e.browser(t)
	b.login(adminToken)
	a := b.get("/ui/system")
	for _, want := range []string{"The worker registry is not available here.", "Queue depths are not available here.",
		"Run statistics are not available here.", "Run counts are not available here.", "Cron triggers are not available here."} {
		if a.status != http.StatusOK || !strings.Contains(a.body, want) {
			t.Errorf("system page (%d) lacks %q", a.status, want)
		}
	}
	a = b.get("/ui/workflows/greet")
	if a.status != http.StatusOK || !strings.Contains(a.body, "Webhook configs are not available here.") {
		t.Errorf("workflow page without triggers: %d", a.status)
	}
}
