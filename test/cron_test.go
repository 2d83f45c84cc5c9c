package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/internal/testenv"
)

// tickWorkflow records the slot it was fired for.
const tickWorkflow = `
nodes:
  - id: tick
    type: set
    values:
      slot: 'input.scheduled_for'
`

// cronEnv is the environment of a cron test process: seconds fields
// allowed (test-only), triggers reloaded every second, and no safety-net
// dispatch within the test, so every run comes from a slot timer.
var cronEnv = []string{"ORCHEO_CRON_SECONDS=true", "ORCHEO_CRON_RELOAD_INTERVAL=1s", "CRON_DISPATCH_INTERVAL=1h"}

// beatStatus reads a beat's /healthz.
func beatStatus(t *testing.T, url string) (active bool, ok bool) {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		return false, false
	}
	defer resp.Body.Close()
	var st struct {
		Active bool `json:"active"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return false, false
	}
	return st.Active, true
}

// TestCronTwoBeats: api + worker + two beats on PostgreSQL and Redis, a
// trigger every 2 seconds set through the CLI. Each slot yields exactly one
// run, started within 2 s of its slot, and the runs succeed; one beat is
// active and the other on standby.
func TestCronTwoBeats(t *testing.T) {
	dbURL := testenv.PostgresURL(t, "e2e_cron")
	port := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	token := "e2e-" + randomSuffix()
	env := append([]string{
		"ORCHEO_DATABASE_URL=" + dbURL,
		"REDIS_URL=" + testenv.RedisURL(t),
		"ORCHEO_REDIS_PREFIX=orcheo-e2e-cron-" + randomSuffix(),
		"ORCHEO_API_TOKEN=" + token,
		fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port),
		"ORCHEO_URL=" + url,
		"ORCHEO_TOKEN=" + token,
	}, cronEnv...)
	api := startProcess(t, env, "api")
	startProcess(t, env, "worker", "--concurrency", "4")
	waitHealthy(t, api, url)

	if out, code := cli(t, env, "workflows", "create", "-f", writeFile(t, "tick.yaml", tickWorkflow), "--handle", "tick"); code != 0 {
		t.Fatalf("workflows create: exit %d: %s", code, out)
	}
	var beatURLs []string
	for range 2 {
		hp := testenv.FreePort(t)
		beatURLs = append(beatURLs, fmt.Sprintf("http://127.0.0.1:%d", hp))
		startProcess(t, append(append([]string{}, env...), fmt.Sprintf("ORCHEO_BEAT_HEALTH_ADDR=127.0.0.1:%d", hp)), "beat")
	}
	out, code := cli(t, env, "triggers", "cron", "set", "tick", "--expression", "*/2 * * * * *")
	if code != 0 || !strings.Contains(out, "next at") {
		t.Fatalf("triggers cron set: exit %d: %s", code, out)
	}
	if out, code := cli(t, env, "triggers", "cron", "show", "tick"); code != 0 || !strings.Contains(out, "*/2 * * * * *") {
		t.Fatalf("triggers cron show: exit %d: %s", code, out)
	}

	c := client.New(url, token)
	ctx := context.Background()
	var runs []*orcheo.Run
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		runs, _, err = c.FindRuns(ctx, "tick", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, r := range runs {
			if r.Status.Terminal() {
				done++
			}
		}
		if done >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d cron runs finished", done, len(runs))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Stop firing before checking, so the list is stable.
	if out, code := cli(t, env, "triggers", "cron", "delete", "tick"); code != 0 {
		t.Fatalf("triggers cron delete: exit %d: %s", code, out)
	}

	sort.Slice(runs, func(i, j int) bool { return runs[i].ScheduledFor.Before(*runs[j].ScheduledFor) })
	for i, r := range runs {
		if r.TriggeredBy != orcheo.TriggerCron || r.ScheduledFor == nil || r.ScheduledFor.Second()%2 != 0 {
			t.Fatalf("run %s: trigger %s slot %v", r.ID, r.TriggeredBy, r.ScheduledFor)
		}
		if i > 0 && r.ScheduledFor.Sub(*runs[i-1].ScheduledFor) != 2*time.Second {
			t.Fatalf("slots %v and %v: one missing or repeated", runs[i-1].ScheduledFor, r.ScheduledFor)
		}
		if !r.Status.Terminal() {
			continue
		}
		full, err := c.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if full.Status != orcheo.RunSucceeded || full.StartedAt == nil {
			t.Fatalf("run of slot %v ended %s: %s", r.ScheduledFor, full.Status, full.Error)
		}
		if late := full.StartedAt.Sub(*r.ScheduledFor); late > 2*time.Second || late < 0 {
			t.Errorf("run of slot %v started %s after it", r.ScheduledFor, late)
		}
		if !strings.Contains(string(full.Output), r.ScheduledFor.UTC().Format("15:04:05")) {
			t.Errorf("output %s does not name its slot %v", full.Output, r.ScheduledFor)
		}
	}

	var active int
	for _, u := range beatURLs {
		a, ok := beatStatus(t, u)
		if !ok {
			t.Fatalf("beat health at %s does not answer", u)
		}
		if a {
			active++
		}
	}
	if active != 1 {
		t.Fatalf("%d beats active, want 1", active)
	}
}

// TestCronDev: a trigger configured through the CLI fires under orcheo
// dev, whose beat runs in-process.
func TestCronDev(t *testing.T) {
	port := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := append([]string{"ORCHEO_DATA_DIR=" + t.TempDir(), fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port), "ORCHEO_URL=" + url}, cronEnv...)
	dev := startProcess(t, env, "dev")
	waitHealthy(t, dev, url)

	if out, code := cli(t, env, "workflows", "create", "-f", writeFile(t, "tick.yaml", tickWorkflow), "--handle", "tick"); code != 0 {
		t.Fatalf("workflows create: exit %d: %s", code, out)
	}
	if out, code := cli(t, env, "triggers", "cron", "set", "tick", "--expression", "* * * * * *", "--timezone", "Europe/Paris"); code != 0 {
		t.Fatalf("triggers cron set: exit %d: %s", code, out)
	}
	out, code := cli(t, env, "triggers", "cron", "set", "tick", "--expression", "* * * * * *", "--timezone", "Mars/Base")
	if code == 0 || !strings.Contains(out, "timezone") {
		t.Fatalf("a bad zone was accepted: exit %d: %s", code, out)
	}
	c := client.New(url, "")
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := orcheo.RunSucceeded
		runs, _, err := c.FindRuns(context.Background(), "tick", string(st), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 {
			if runs[0].TriggeredBy != orcheo.TriggerCron || !strings.Contains(string(runs[0].Input), "Europe/Paris") {
				t.Fatalf("run %+v input %s", runs[0], runs[0].Input)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cron run succeeded under orcheo dev:\n%s", dev.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, code = cli(t, env, "runs", "list", "--workflow", "tick")
	if code != 0 || !strings.Contains(out, "cron") {
		t.Fatalf("runs list: exit %d:\n%s", code, out)
	}
	// The other flags of docs/cron.md.
	if out, code := cli(t, env, "triggers", "cron", "set", "tick", "--expression", "@hourly", "--catchup", "all",
		"--catchup-limit", "5", "--allow-overlapping"); code != 0 {
		t.Fatalf("triggers cron set: exit %d: %s", code, out)
	}
	out, code = cli(t, env, "triggers", "cron", "show", "tick")
	if code != 0 || !strings.Contains(out, "all (at most 5)") || !strings.Contains(out, "Allow overlapping true") {
		t.Fatalf("triggers cron show: exit %d:\n%s", code, out)
	}
	if out, code := cli(t, env, "triggers", "cron", "delete", "tick"); code != 0 {
		t.Fatalf("triggers cron delete: exit %d: %s", code, out)
	}
	if out, code := cli(t, env, "triggers", "cron", "show", "tick"); code == 0 || !strings.Contains(out, "no cron trigger") {
		t.Fatalf("show after delete: exit %d: %s", code, out)
	}
}
