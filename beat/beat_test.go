package beat_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/beat"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/schedule"
	"github.com/orcheo/orcheo/tasks/leadership"
	"github.com/orcheo/orcheo/tasks/rdb"
)

// fakeAPI records dispatch times; the first failures calls fail.
type fakeAPI struct {
	mu       sync.Mutex
	triggers []*orcheo.CronTrigger
	calls    []time.Time
	failures int
	finds    int // FindCronTriggers calls: reloads
}

func (a *fakeAPI) FindCronTriggers(ctx context.Context) ([]*orcheo.CronTrigger, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.finds++
	return a.triggers, nil
}

func (a *fakeAPI) reloads() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.finds
}

func (a *fakeAPI) setTriggers(list ...*orcheo.CronTrigger) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.triggers = list
}

func (a *fakeAPI) DispatchCron(ctx context.Context, now *time.Time) (*orcheo.CronDispatch, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, time.Now())
	if a.failures > 0 {
		a.failures--
		return nil, orcheo.Errorf(orcheo.EUNAVAILABLE, "api down")
	}
	return &orcheo.CronDispatch{Now: time.Now()}, nil
}

func (a *fakeAPI) callTimes() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.calls...)
}

func quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFiresAtSlots: with a per-second trigger and an hour-long safety net,
// the beat dispatches at the start of each second, so every call comes
// from a slot timer.
func TestFiresAtSlots(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{triggers: []*orcheo.CronTrigger{{WorkflowID: "w", Expression: "* * * * * *", UpdatedAt: time.Now()}}}
	b := beat.New(beat.Config{API: api, Scheduler: schedule.Scheduler{Seconds: true}, Interval: time.Hour, Logger: quiet()})
	b.Start(context.Background())
	defer b.Stop()
	waitFor(t, "four dispatches", func() bool { return len(api.callTimes()) >= 4 })
	b.Stop()
	calls := api.callTimes()
	// The first call is the start-up dispatch; the rest follow slot timers.
	for _, c := range calls[2:] {
		if ms := c.Nanosecond() / 1e6; ms > 500 {
			t.Errorf("dispatch at %s is %d ms after its slot", c.Format("15:04:05.000"), ms)
		}
	}
	if st := b.Status(); !st.Active || st.Triggers != 1 || st.Dispatches < 4 {
		t.Fatalf("status = %+v", st)
	}
	b.Stop() // twice is fine
}

// TestRetries: while the API fails, the beat retries with backoff until it
// answers.
func TestRetries(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{failures: 2}
	b := beat.New(beat.Config{API: api, Scheduler: schedule.Scheduler{}, Interval: time.Hour, Logger: quiet()})
	b.Start(context.Background())
	defer b.Stop()
	waitFor(t, "a successful dispatch", func() bool { return b.Status().Dispatches == 1 })
	calls := api.callTimes()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 2 failures and 1 success", len(calls))
	}
	if gap := calls[2].Sub(calls[1]); gap < calls[1].Sub(calls[0]) {
		t.Fatalf("backoff did not grow: %s then %s", calls[1].Sub(calls[0]), gap)
	}
}

func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	b := beat.New(beat.Config{API: &fakeAPI{}, Scheduler: schedule.Scheduler{}})
	b.Stop()
	b.Stop()
	b.Start(context.Background())
	b.Stop()
}

// node is one beat process: its own Redis client, elector and scheduler.
type node struct {
	client  redis.UniversalClient
	elector *leadership.Elector
	beat    *beat.Scheduler
	api     *fakeAPI
}

func startNode(t *testing.T, prefix, holder string, ttl time.Duration) *node {
	t.Helper()
	c, err := rdb.Open(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{client: c, api: &fakeAPI{}}
	n.elector = leadership.NewElector(leadership.Config{Store: rdb.NewLeaders(c, prefix), Name: "beat",
		Holder: holder, TTL: ttl, Logger: quiet()})
	n.beat = beat.New(beat.Config{API: n.api, Scheduler: schedule.Scheduler{}, Interval: time.Hour,
		Elector: n.elector, Logger: quiet()})
	n.elector.Start(context.Background())
	n.beat.Start(context.Background())
	t.Cleanup(func() { n.stop(); _ = c.Close() })
	return n
}

// stop shuts the beat down as orcheo beat does: the scheduler, then the
// elector (which resigns).
func (n *node) stop() {
	n.beat.Stop()
	n.elector.Stop()
}

// TestStandbyTakesOverWithinTTL: of two beats on one Redis, one is active
// and the other dispatches nothing; when the active one stops, it resigns
// and the standby is active and dispatching within the TTL.
func TestStandbyTakesOverWithinTTL(t *testing.T) {
	t.Parallel()
	prefix := "orcheo_test_beat:" + orcheo.NewID()
	const ttl = 900 * time.Millisecond
	a := startNode(t, prefix, "a", ttl)
	waitFor(t, "beat a active", func() bool { return a.beat.Status().Active })
	waitFor(t, "beat a dispatches", func() bool { return len(a.api.callTimes()) > 0 })
	b := startNode(t, prefix, "b", ttl)
	// b tries every TTL/3 across several TTLs and must stay standby.
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		if b.beat.Status().Active || len(b.api.callTimes()) != 0 {
			t.Fatalf("standby beat active or dispatching: %+v", b.beat.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, _ := a.client.Get(context.Background(), rdb.LeaderKey(prefix, "beat")).Result(); v != "a" {
		t.Fatalf("leader key holds %q, want a", v)
	}

	a.stop()
	stopped := time.Now()
	waitFor(t, "beat b dispatches", func() bool { return len(b.api.callTimes()) > 0 })
	took := b.api.callTimes()[0].Sub(stopped)
	t.Logf("a stopped → b's first dispatch: %s (TTL %s)", took.Round(10*time.Millisecond), ttl)
	if took > ttl {
		t.Fatalf("standby dispatched %s after the active beat stopped, want within the TTL (%s)", took, ttl)
	}
}

// TestStandbyTakesOverAfterCrash: an active beat that loses Redis for good
// (its process is as good as dead: it cannot renew nor resign) goes
// standby, and the other beat takes over once the lease expires.
func TestStandbyTakesOverAfterCrash(t *testing.T) {
	t.Parallel()
	prefix := "orcheo_test_beat:" + orcheo.NewID()
	const ttl = 1200 * time.Millisecond
	a := startNode(t, prefix, "a", ttl)
	waitFor(t, "beat a active", func() bool { return a.beat.Status().Active })
	b := startNode(t, prefix, "b", ttl)
	_ = a.client.Close()
	crashed := time.Now()
	waitFor(t, "beat b dispatches", func() bool { return len(b.api.callTimes()) > 0 })
	took := b.api.callTimes()[0].Sub(crashed)
	t.Logf("a's Redis gone → b's first dispatch: %s (TTL %s)", took.Round(10*time.Millisecond), ttl)
	if a.beat.Status().Active {
		t.Fatal("beat a still active without Redis")
	}
	// The lease expires within a TTL; b tries every TTL/3 plus at most
	// TTL/12. The slack is for a loaded machine.
	if bound := ttl + ttl/3 + ttl/12 + 500*time.Millisecond; took > bound {
		t.Fatalf("standby dispatched %s after the crash, want within %s", took, bound)
	}
}
