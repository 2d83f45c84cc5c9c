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
)

// fakeAPI records dispatch times; the first failures calls fail.
type fakeAPI struct {
	mu       sync.Mutex
	triggers []*orcheo.CronTrigger
	calls    []time.Time
	failures int
}

func (a *fakeAPI) FindCronTriggers(ctx context.Context) ([]*orcheo.CronTrigger, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.triggers, nil
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

// TestLeaseOnRedis: of two beats on one Redis, one is active; when it
// stops it releases the lease and the other takes over.
func TestLeaseOnRedis(t *testing.T) {
	t.Parallel()
	opts, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	defer rc.Close()
	key := "orcheo_test_beat:" + orcheo.NewID() + ":beat:leader"
	defer rc.Del(context.Background(), key)

	ctx := context.Background()
	a := &beat.RedisLease{Client: rc, Key: key, Owner: "a", TTL: 2 * time.Second}
	b := &beat.RedisLease{Client: rc, Key: key, Owner: "b", TTL: 2 * time.Second}
	if ok, err := a.Acquire(ctx); !ok || err != nil {
		t.Fatalf("a: %t %v", ok, err)
	}
	if ok, err := b.Acquire(ctx); ok || err != nil {
		t.Fatalf("b took a held lease: %t %v", ok, err)
	}
	if ok, err := a.Acquire(ctx); !ok || err != nil {
		t.Fatalf("a could not extend: %t %v", ok, err)
	}
	// b's release must not free a's lease.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := rc.Get(ctx, key).Result(); v != "a" {
		t.Fatalf("lease holder = %q after b's release", v)
	}

	apiA, apiB := &fakeAPI{}, &fakeAPI{}
	beatA := beat.New(beat.Config{API: apiA, Scheduler: schedule.Scheduler{}, Interval: time.Hour, Lease: a,
		LeaseRenew: 100 * time.Millisecond, Logger: quiet()})
	beatB := beat.New(beat.Config{API: apiB, Scheduler: schedule.Scheduler{}, Interval: time.Hour, Lease: b,
		LeaseRenew: 100 * time.Millisecond, Logger: quiet()})
	beatA.Start(ctx)
	defer beatA.Stop()
	waitFor(t, "beat a active", func() bool { return beatA.Status().Active })
	beatB.Start(ctx)
	defer beatB.Stop()
	time.Sleep(300 * time.Millisecond) // several renewals: b must stay standby
	if beatB.Status().Active || len(apiB.callTimes()) != 0 {
		t.Fatalf("standby beat dispatched: %+v", beatB.Status())
	}
	beatA.Stop()
	waitFor(t, "beat b active", func() bool { return beatB.Status().Active })
	waitFor(t, "beat b dispatches", func() bool { return len(apiB.callTimes()) > 0 })
}
