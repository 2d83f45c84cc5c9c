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
	"github.com/orcheo/orcheo/internal/promtext"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/tasks/leadership"
)

// tickWorkflow records the slot it was fired for.
const tickWorkflow = `
nodes:
  - id: tick
    type: set
    values:
      slot: 'input.scheduled_for'
`

// slowWorkflow outlasts several one-second slots; %s is its delay.
const slowWorkflow = `
nodes:
  - id: wait
    type: delay
    duration: %s
`

// cronEnv is the environment of a cron test process: seconds fields
// allowed (test-only), triggers reloaded every second, and no safety-net
// dispatch within the test, so every run comes from a slot timer.
var cronEnv = []string{"ORCHEO_CRON_SECONDS=true", "ORCHEO_CRON_RELOAD_INTERVAL=1s", "CRON_DISPATCH_INTERVAL=1h"}

// failoverBound is how long a standby beat may take to become active after
// the active one died, as docs/cron.md states it: the lease outlives its
// holder by at most its TTL, and the standby tries again every renew
// period (a third of the TTL) plus a jitter of up to a quarter of that.
const failoverBound = leadership.TTLDefault + leadership.TTLDefault/3 + leadership.TTLDefault/12

// mustCLI runs an orcheo command that must succeed and returns its output.
func mustCLI(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, code := cli(t, env, args...)
	if code != 0 {
		t.Fatalf("orcheo %s: exit %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// startBeat starts `orcheo beat` with a health port and returns it with
// the health endpoint's base URL.
func startBeat(t *testing.T, env []string) (*process, string) {
	t.Helper()
	hp := testenv.FreePort(t)
	p := startProcess(t, append(append([]string{}, env...), fmt.Sprintf("ORCHEO_BEAT_HEALTH_ADDR=127.0.0.1:%d", hp)), "beat")
	return p, fmt.Sprintf("http://127.0.0.1:%d", hp)
}

// beatStatus reads a beat's /healthz.
func beatStatus(url string) (active bool, ok bool) {
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

// cronRuns returns every run of workflow ref, oldest slot first.
func cronRuns(t *testing.T, c *client.Client, ref string) []*orcheo.Run {
	t.Helper()
	runs, _, err := c.QueryRuns(context.Background(), client.RunQuery{Workflow: ref, Trigger: orcheo.TriggerCron, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].ScheduledFor.Before(*runs[j].ScheduledFor) })
	return runs
}

// waitCronRuns polls ref's runs until done holds and returns them.
func waitCronRuns(t *testing.T, c *client.Client, ref string, timeout time.Duration, what string, done func([]*orcheo.Run) bool) []*orcheo.Run {
	t.Helper()
	var runs []*orcheo.Run
	waitFor(t, timeout, what, func() bool {
		runs = cronRuns(t, c, ref)
		return done(runs)
	})
	return runs
}

// checkSlots fails unless runs (oldest first) are one per slot, every
// period, with none missing or repeated.
func checkSlots(t *testing.T, runs []*orcheo.Run, period time.Duration) {
	t.Helper()
	for i, r := range runs {
		if r.TriggeredBy != orcheo.TriggerCron || r.ScheduledFor == nil || r.ScheduledFor.Truncate(period) != *r.ScheduledFor {
			t.Fatalf("run %s: trigger %s slot %v", r.ID, r.TriggeredBy, r.ScheduledFor)
		}
		if i > 0 && r.ScheduledFor.Sub(*runs[i-1].ScheduledFor) != period {
			t.Fatalf("slots %v and %v: one missing or repeated", runs[i-1].ScheduledFor, r.ScheduledFor)
		}
	}
}

// findRow returns the line of a `runs list` table that shows run id, or "".
func findRow(out, id string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, id+" ") {
			return line
		}
	}
	return ""
}

// listRow is findRow for a run that must be listed.
func listRow(t *testing.T, out, id string) string {
	t.Helper()
	row := findRow(out, id)
	if row == "" {
		t.Fatalf("run %s is not in the list:\n%s", id, out)
	}
	return row
}

// slotText is how `runs list` prints a slot (its SCHEDULED column).
func slotText(r *orcheo.Run) string { return r.ScheduledFor.UTC().Format("2006-01-02 15:04:05Z") }

// TestCronTwoBeatsFailover: api + worker + two beats on PostgreSQL and
// Redis, a trigger every 2 seconds set through the CLI. One beat is active,
// the other on standby; each slot yields exactly one run, started within 2 s
// of its slot. Then the active beat is killed with SIGKILL: the standby
// takes over within failoverBound, fires the slots of the gap late (they are
// within the grace period), and no slot is lost or fired twice.
func TestCronTwoBeatsFailover(t *testing.T) {
	s := startStack(t, "e2e_cron", cronEnv...)
	mustCLI(t, s.env, "workflows", "create", "-f", writeFile(t, "tick.yaml", tickWorkflow), "--handle", "tick")
	var (
		beats    []*process
		beatURLs []string
	)
	for range 2 {
		p, u := startBeat(t, s.env)
		beats, beatURLs = append(beats, p), append(beatURLs, u)
	}
	if out := mustCLI(t, s.env, "triggers", "cron", "set", "tick", "--expression", "*/2 * * * * *"); !strings.Contains(out, "next at") {
		t.Fatalf("triggers cron set: %s", out)
	}
	if out := mustCLI(t, s.env, "triggers", "cron", "show", "tick"); !strings.Contains(out, "*/2 * * * * *") {
		t.Fatalf("triggers cron show: %s", out)
	}
	waitCronRuns(t, s.client, "tick", time.Minute, "3 cron runs to finish", func(runs []*orcheo.Run) bool {
		return countTerminal(runs) >= 3
	})

	active := -1
	for i, u := range beatURLs {
		a, ok := beatStatus(u)
		if !ok {
			t.Fatalf("beat health at %s does not answer", u)
		}
		if a {
			if active >= 0 {
				t.Fatal("both beats are active")
			}
			active = i
		}
	}
	if active < 0 {
		t.Fatal("no beat is active")
	}
	killed := time.Now()
	kill9(beats[active])
	standby := beatURLs[1-active]
	waitFor(t, failoverBound+30*time.Second, "the standby beat to become active", func() bool {
		a, _ := beatStatus(standby)
		return a
	})
	tookOver := time.Now()
	// A few seconds over the bound for the polling and a loaded machine.
	if took := tookOver.Sub(killed); took > failoverBound+3*time.Second {
		t.Errorf("the standby took over %s after the kill, documented bound %s", took, failoverBound)
	} else {
		t.Logf("the standby took over %s after the kill", took)
	}
	// Its metrics port says the same as its health.
	if _, text, err := promtext.Get(standby+"/metrics", ""); err != nil {
		t.Errorf("beat metrics: %v", err)
	} else if v, ok := promtext.Value(text, "orcheo_beat_active"); !ok || v != 1 {
		t.Errorf("orcheo_beat_active = %v (present %v) on the active beat, want 1", v, ok)
	}
	waitCronRuns(t, s.client, "tick", time.Minute, "a run after the failover to finish", func(runs []*orcheo.Run) bool {
		for _, r := range runs {
			if r.ScheduledFor.After(tookOver.Add(2*time.Second)) && r.Status.Terminal() {
				return true
			}
		}
		return false
	})
	// Stop firing before checking, so the list is stable.
	mustCLI(t, s.env, "triggers", "cron", "delete", "tick")

	runs := cronRuns(t, s.client, "tick")
	checkSlots(t, runs, 2*time.Second)
	ctx := context.Background()
	var gapFired []string // runs fired in the gap, oldest first
	for _, r := range runs {
		if !r.Status.Terminal() {
			continue
		}
		// Slots from just before the kill to the takeover wait for the
		// standby; every other slot starts within 2 s.
		bound := 2 * time.Second
		inGap := r.ScheduledFor.After(killed.Add(-2*time.Second)) && !r.ScheduledFor.After(tookOver)
		if inGap {
			bound += tookOver.Sub(*r.ScheduledFor)
		}
		// The standby dispatches the gap's slots at once; with
		// allow_overlapping false the first fires and the others are
		// recorded as skipped, naming it (docs/cron.md).
		if r.Status == orcheo.RunSkipped && inGap && namesAny(r.Error, gapFired) {
			continue
		}
		full, err := s.client.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if full.Status != orcheo.RunSucceeded || full.StartedAt == nil {
			t.Fatalf("run of slot %v ended %s: %s", r.ScheduledFor, full.Status, full.Error)
		}
		if inGap {
			gapFired = append(gapFired, r.ID)
		}
		if late := full.StartedAt.Sub(*r.ScheduledFor); late > bound || late < 0 {
			t.Errorf("run of slot %v started %s after it (bound %s)", r.ScheduledFor, late, bound)
		}
		if !strings.Contains(string(full.Output), r.ScheduledFor.UTC().Format("15:04:05")) {
			t.Errorf("output %s does not name its slot %v", full.Output, r.ScheduledFor)
		}
	}
}

// namesAny reports whether text contains one of ids.
func namesAny(text string, ids []string) bool {
	for _, id := range ids {
		if strings.Contains(text, id) {
			return true
		}
	}
	return false
}

// countTerminal counts the runs that ended.
func countTerminal(runs []*orcheo.Run) int {
	n := 0
	for _, r := range runs {
		if r.Status.Terminal() {
			n++
		}
	}
	return n
}

// TestCronOverlap: slow workflows on a one-second schedule with
// allow_overlapping=false: "slow" waits 4 s in its worker slot (running),
// "slower" waits 6 s, longer than the worker's ORCHEO_DELAY_SUSPEND_AFTER,
// so its run is suspended (pending) meanwhile. For each, the slots that come
// while its first run is busy are recorded as skipped runs naming it, shown
// by `runs list --status skipped`; the first slot after it ended fires and
// succeeds.
func TestCronOverlap(t *testing.T) {
	t.Parallel()
	s := startStack(t, "e2e_cron_overlap", append(append([]string{}, cronEnv...), "ORCHEO_DELAY_SUSPEND_AFTER=5s")...)
	handles := map[string]string{"slow": "4s", "slower": "6s"}
	for handle, delay := range handles {
		mustCLI(t, s.env, "workflows", "create", "-f", writeFile(t, handle+".yaml", fmt.Sprintf(slowWorkflow, delay)), "--handle", handle)
	}
	startBeat(t, s.env)
	for handle := range handles {
		mustCLI(t, s.env, "triggers", "cron", "set", handle, "--expression", "* * * * * *")
	}
	for handle := range handles {
		checkOverlap(t, s, handle)
	}
}

// checkOverlap waits until handle's first cron run succeeded and the next
// run that was not skipped ended, then checks the runs between and how
// `runs list` and `runs show` present them.
func checkOverlap(t *testing.T, s *stack, handle string) {
	t.Helper()
	waitCronRuns(t, s.client, handle, 90*time.Second, "the first run after the slow one to end", func(runs []*orcheo.Run) bool {
		if len(runs) == 0 || runs[0].Status != orcheo.RunSucceeded {
			return false
		}
		for _, r := range runs[1:] {
			if r.Status != orcheo.RunSkipped {
				return r.Status.Terminal()
			}
		}
		return false
	})
	mustCLI(t, s.env, "triggers", "cron", "delete", handle)

	runs := cronRuns(t, s.client, handle)
	checkSlots(t, runs, time.Second)
	first := runs[0]
	ended := *first.CompletedAt
	var (
		skipped []*orcheo.Run
		next    *orcheo.Run
	)
	for _, r := range runs[1:] {
		if r.Status != orcheo.RunSkipped {
			next = r
			break
		}
		skipped = append(skipped, r)
		// A slot is skipped only if it was dispatched while the first run
		// was busy, so before that run ended.
		if !r.ScheduledFor.Before(ended) || !strings.Contains(r.Error, first.ID) || r.StartedAt != nil {
			t.Errorf("%s: skipped run %s of slot %v (first run ended %v): %q", handle, r.ID, r.ScheduledFor, ended, r.Error)
		}
	}
	if len(skipped) == 0 {
		t.Fatalf("%s: no slot was skipped during the first run (%v to %v)", handle, first.ScheduledFor, ended)
	}
	if next.Status != orcheo.RunSucceeded {
		t.Fatalf("%s: the run after the slow one ended %s: %s", handle, next.Status, next.Error)
	}
	// Dispatch lags its slot by milliseconds; allow 2 s on a loaded machine
	// for a slot just before the end to fire. No slot after the end may be
	// skipped.
	if next.ScheduledFor.Before(ended.Add(-2*time.Second)) || next.ScheduledFor.After(ended.Add(time.Second)) {
		t.Errorf("%s: the first run after the slow one is for slot %v, the slow one ended %v", handle, next.ScheduledFor, ended)
	}

	out := mustCLI(t, s.env, "runs", "list", "--workflow", handle, "--status", "skipped")
	for _, r := range skipped {
		row := listRow(t, out, r.ID)
		if !strings.Contains(row, "skipped") || !strings.Contains(row, slotText(r)) ||
			!strings.Contains(row, first.ID) || !strings.Contains(row, "allow_overlapping is false") {
			t.Errorf("%s: runs list row of skipped slot %v: %s", handle, r.ScheduledFor, row)
		}
	}
	if findRow(out, next.ID) != "" {
		t.Errorf("%s: runs list --status skipped shows the run that fired:\n%s", handle, out)
	}
	out = mustCLI(t, s.env, "runs", "list", "--workflow", handle, "--trigger", "cron", "--limit", "1000")
	if row := listRow(t, out, next.ID); !strings.Contains(row, "succeeded") || !strings.Contains(row, slotText(next)) {
		t.Errorf("%s: runs list row of the run after the slow one: %s", handle, row)
	}
	out = mustCLI(t, s.env, "runs", "show", skipped[0].ID)
	if !strings.Contains(out, "Scheduled "+slotText(skipped[0])) || !strings.Contains(out, "Error     skipped: ") {
		t.Errorf("%s: runs show of a skipped run:\n%s", handle, out)
	}
}

// TestCronCatchup: three triggers every second whose slots pass while no
// beat runs; a dispatch afterwards (as of a moment when no slot is within
// the 500 ms grace) fires exactly what docs/cron.md promises: latest → the
// newest slot; all with limit 3 → the newest three; all without
// overlapping → the oldest of those three, the other two skipped. Each fired
// run succeeds and `runs list` shows them late.
func TestCronCatchup(t *testing.T) {
	t.Parallel()
	s := startStack(t, "e2e_cron_catchup", append(append([]string{}, cronEnv...), "ORCHEO_CRON_GRACE=500ms")...)
	ctx := context.Background()
	triggers := map[string][]string{
		"latest":     {"--catchup", "latest"},
		"all":        {"--catchup", "all", "--catchup-limit", "3", "--allow-overlapping"},
		"allskipped": {"--catchup", "all", "--catchup-limit", "3"},
	}
	var setAt time.Time
	for handle, flags := range triggers {
		mustCLI(t, s.env, "workflows", "create", "-f", writeFile(t, handle+".yaml", tickWorkflow), "--handle", handle)
		mustCLI(t, s.env, append([]string{"triggers", "cron", "set", handle, "--expression", "* * * * * *"}, flags...)...)
		trig, err := s.client.FindCronTrigger(ctx, handle)
		if err != nil {
			t.Fatal(err)
		}
		if trig.UpdatedAt.After(setAt) {
			setAt = trig.UpdatedAt
		}
	}
	// Let at least five slots of every trigger pass with no beat, then
	// dispatch as of 700 ms after the newest whole second: that slot is
	// 700 ms late, past the grace, so every due slot counts as missed.
	time.Sleep(time.Until(setAt.Add(7 * time.Second)))
	at := time.Now().Add(-time.Second).Truncate(time.Second).Add(700 * time.Millisecond)
	newest := at.Truncate(time.Second)
	res, err := s.client.DispatchCron(ctx, &at)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 7 {
		t.Fatalf("dispatch created %d runs, want 1 + 3 + 3", len(res.Runs))
	}
	if again, err := s.client.DispatchCron(ctx, &at); err != nil || len(again.Runs) != 0 {
		t.Fatalf("a second dispatch at the same time: %+v, %v", again, err)
	}

	want := map[string][]orcheo.RunStatus{
		"latest":     {orcheo.RunSucceeded},
		"all":        {orcheo.RunSucceeded, orcheo.RunSucceeded, orcheo.RunSucceeded},
		"allskipped": {orcheo.RunSucceeded, orcheo.RunSkipped, orcheo.RunSkipped},
	}
	out := mustCLI(t, s.env, "runs", "list", "--trigger", "cron")
	for handle, statuses := range want {
		runs := waitCronRuns(t, s.client, handle, time.Minute, handle+" runs to end", func(runs []*orcheo.Run) bool {
			return countTerminal(runs) == len(runs)
		})
		if len(runs) != len(statuses) {
			t.Fatalf("%s: %d runs, want %d", handle, len(runs), len(statuses))
		}
		checkSlots(t, runs, time.Second)
		if !runs[len(runs)-1].ScheduledFor.Equal(newest) {
			t.Errorf("%s: newest run is for slot %v, want %v", handle, runs[len(runs)-1].ScheduledFor, newest)
		}
		for i, r := range runs {
			if r.Status != statuses[i] {
				t.Errorf("%s: run of slot %v is %s, want %s (%s)", handle, r.ScheduledFor, r.Status, statuses[i], r.Error)
			}
			row := listRow(t, out, r.ID)
			if !strings.Contains(row, handle+" ") || !strings.Contains(row, slotText(r)) {
				t.Errorf("%s: runs list row: %s", handle, row)
			}
			note := " late"
			if r.Status == orcheo.RunSkipped {
				note = "skipped: the run of slot"
				if !strings.Contains(r.Error, runs[0].ID) {
					t.Errorf("%s: skipped run %s does not name the run it waited for: %s", handle, r.ID, r.Error)
				}
			}
			if !strings.Contains(row, note) {
				t.Errorf("%s: runs list row lacks %q: %s", handle, note, row)
			}
		}
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
	var run *orcheo.Run
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
			run = runs[0]
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
	// runs show names the slot in UTC and in the trigger's zone.
	paris, _ := time.LoadLocation("Europe/Paris")
	out, code = cli(t, env, "runs", "show", run.ID)
	if code != 0 || !strings.Contains(out, "Scheduled "+slotText(run)+" ("+run.ScheduledFor.In(paris).Format("2006-01-02 15:04:05")+" Europe/Paris)") {
		t.Fatalf("runs show: exit %d:\n%s", code, out)
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
