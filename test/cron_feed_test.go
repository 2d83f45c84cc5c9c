package test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// feedOnTime is how late after its slot a cron run may be created: the
// slot timer's dispatch, one HTTP call and one insert, on a loaded machine.
const feedOnTime = time.Second

// beatHealth reads a beat's /healthz: how many triggers it has timers for
// and how many dispatches it has made.
func beatHealth(t *testing.T, url string) (triggers int, dispatches int64) {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("beat health: %v", err)
	}
	defer resp.Body.Close()
	var st struct {
		Triggers   int   `json:"triggers"`
		Dispatches int64 `json:"dispatches"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("beat health: %v", err)
	}
	return st.Triggers, st.Dispatches
}

// firstSlotAfter waits for the run of ref's first slot after since and
// fails unless it was created within feedOnTime of its slot.
func firstSlotAfter(t *testing.T, s *stack, ref string, since time.Time, period time.Duration) *orcheo.Run {
	t.Helper()
	var first *orcheo.Run
	// The slot comes within one period; a beat that waits for its next
	// reload (a minute here) misses this.
	waitCronRuns(t, s.client, ref, period+3*time.Second, "the first slot's run after "+since.Format("15:04:05.000"), func(runs []*orcheo.Run) bool {
		for _, r := range runs {
			if r.ScheduledFor.After(since) {
				first = r
				return true
			}
		}
		return false
	})
	if first.ScheduledFor.Sub(since) > period {
		t.Fatalf("the first run after %s is for slot %s, more than a period later: a slot was missed", since.Format("15:04:05.000"), first.ScheduledFor.Format("15:04:05.000"))
	}
	late := first.CreatedAt.Sub(*first.ScheduledFor)
	if late > feedOnTime || late < 0 {
		t.Fatalf("the run of slot %s was created %s after it, want within %s", first.ScheduledFor.Format("15:04:05.000"), late, feedOnTime)
	}
	t.Logf("slot %s fired %s after it", first.ScheduledFor.Format("15:04:05.000"), late)
	return first
}

// dispatchesStayAt fails if the beat dispatches during d: it has no timer
// due then.
func dispatchesStayAt(t *testing.T, url string, d time.Duration, why string) {
	t.Helper()
	_, before := beatHealth(t, url)
	time.Sleep(d)
	if _, after := beatHealth(t, url); after != before {
		t.Fatalf("%s, yet the beat dispatched %d times in %s: its timers are stale", why, after-before, d)
	}
}

// TestCronFeed_FirstSlotOnTime: a beat whose periodic reload is a minute
// away hears each change of a trigger on the change feed. A new trigger's
// first slot, and a changed expression's, fire within feedOnTime of the
// slot; a trigger changed to a yearly slot, and one deleted, leave the
// beat with no timer due at once (its dispatches stop).
func TestCronFeed_FirstSlotOnTime(t *testing.T) {
	env := []string{"ORCHEO_CRON_SECONDS=true", "ORCHEO_CRON_RELOAD_INTERVAL=1m", "CRON_DISPATCH_INTERVAL=1h"}
	s := startStack(t, "e2e_cron_feed", env...)
	mustCLI(t, s.env, "workflows", "create", "-f", writeFile(t, "tick.yaml", tickWorkflow), "--handle", "tick")
	_, beatURL := startBeat(t, s.env)
	waitFor(t, 30*time.Second, "the beat to be active", func() bool {
		a, _ := beatStatus(beatURL)
		return a
	})
	// Past its start-up reload and dispatch, so only the feed can bring
	// what follows before a minute.
	time.Sleep(500 * time.Millisecond)
	const every2s = "*/2 * * * * *"

	t.Run("NewTrigger", func(t *testing.T) {
		since := time.Now()
		mustCLI(t, s.env, "triggers", "cron", "set", "tick", "--expression", every2s)
		firstSlotAfter(t, s, "tick", since, 2*time.Second)
		if n, _ := beatHealth(t, beatURL); n != 1 {
			t.Fatalf("the beat has timers for %d triggers, want 1", n)
		}
	})
	t.Run("ChangedToRare", func(t *testing.T) {
		// Once a year: no slot due, so the beat must stop dispatching once
		// it has heard of it (at most one dispatch for the reload itself).
		mustCLI(t, s.env, "triggers", "cron", "set", "tick", "--expression", "0 0 0 1 1 *")
		time.Sleep(500 * time.Millisecond)
		changed := time.Now()
		dispatchesStayAt(t, beatURL, 3*time.Second, "the trigger fires once a year")
		for _, r := range cronRuns(t, s.client, "tick") {
			if r.ScheduledFor.After(changed) {
				t.Fatalf("run %s for slot %s after the change to a yearly slot", r.ID, r.ScheduledFor)
			}
		}
	})
	t.Run("ChangedToFrequent", func(t *testing.T) {
		// The beat's only timer is a year away: without the feed nothing
		// would fire before its next reload.
		since := time.Now()
		mustCLI(t, s.env, "triggers", "cron", "set", "tick", "--expression", every2s)
		firstSlotAfter(t, s, "tick", since, 2*time.Second)
	})
	t.Run("Deleted", func(t *testing.T) {
		mustCLI(t, s.env, "triggers", "cron", "delete", "tick")
		deleted := time.Now()
		waitFor(t, time.Second, "the beat to drop the deleted trigger's timer", func() bool {
			n, _ := beatHealth(t, beatURL)
			return n == 0
		})
		time.Sleep(200 * time.Millisecond) // the reload's own dispatch
		dispatchesStayAt(t, beatURL, 3*time.Second, "the trigger is deleted")
		for _, r := range cronRuns(t, s.client, "tick") {
			// A slot within the delete call's own second may still fire.
			if r.ScheduledFor.After(deleted.Add(100 * time.Millisecond)) {
				t.Fatalf("run %s for slot %s after the trigger was deleted", r.ID, r.ScheduledFor)
			}
		}
	})
}
