package leadership_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/tasks/leadership"
	"github.com/orcheo/orcheo/tasks/rdb"
)

const name = "test"

// bundle is one test's leases: a prefix of its own on the shared Redis.
type bundle struct {
	client  redis.UniversalClient
	leaders *rdb.Leaders
	prefix  string
}

func setup(tb testing.TB) *bundle {
	tb.Helper()
	c, err := rdb.Open(testenv.RedisURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	prefix := "leadership-test:" + orcheo.NewID()
	tb.Cleanup(func() {
		c.Del(context.Background(), rdb.LeaderKey(prefix, name))
		_ = c.Close()
	})
	return &bundle{client: c, leaders: rdb.NewLeaders(c, prefix), prefix: prefix}
}

func (b *bundle) leader(tb testing.TB) string {
	tb.Helper()
	v, err := b.leaders.Leader(context.Background(), name)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// faultyStore is a Store that fails every call once broken: a leader whose
// Redis is unreachable, or a crashed process that can no longer resign.
type faultyStore struct {
	leadership.Store
	broken atomic.Bool
}

var errBroken = errors.New("store is broken")

func (s *faultyStore) Elect(ctx context.Context, n, h string, ttl time.Duration) (bool, error) {
	if s.broken.Load() {
		return false, errBroken
	}
	return s.Store.Elect(ctx, n, h, ttl)
}

func (s *faultyStore) Reelect(ctx context.Context, n, h string, ttl time.Duration) (bool, error) {
	if s.broken.Load() {
		return false, errBroken
	}
	return s.Store.Reelect(ctx, n, h, ttl)
}

func (s *faultyStore) Resign(ctx context.Context, n, h string) error {
	if s.broken.Load() {
		return errBroken
	}
	return s.Store.Resign(ctx, n, h)
}

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// candidate is an elector whose changes are recorded.
type candidate struct {
	*leadership.Elector
	store *faultyStore
	sub   *leadership.Subscription

	mu      sync.Mutex
	changes []bool
}

func newCandidate(tb testing.TB, b *bundle, holder string, ttl time.Duration) *candidate {
	tb.Helper()
	c := &candidate{store: &faultyStore{Store: b.leaders}}
	c.Elector = leadership.NewElector(leadership.Config{Store: c.store, Name: name, Holder: holder, TTL: ttl, Logger: quiet()})
	c.sub = c.Listen()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := range c.sub.C() {
			c.mu.Lock()
			c.changes = append(c.changes, n.IsLeader)
			c.mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		c.Stop()
		c.sub.Unlisten()
		<-done
	})
	return c
}

// history is every notification so far, the first being the role at
// Listen (false).
func (c *candidate) history() []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bool(nil), c.changes...)
}

// waitFor polls cond for up to 20 s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestElector_Defaults(t *testing.T) {
	t.Parallel()
	e := leadership.NewElector(leadership.Config{Store: &faultyStore{}, Name: name, Holder: "a"})
	cfg := e.Config()
	if cfg.TTL != leadership.TTLDefault || cfg.RenewInterval != leadership.TTLDefault/3 ||
		cfg.Jitter != leadership.TTLDefault/12 || cfg.Logger == nil {
		t.Fatalf("defaults = %+v", cfg)
	}
	for _, bad := range []leadership.Config{
		{Name: name, Holder: "a"},
		{Store: &faultyStore{}, Holder: "a"},
		{Store: &faultyStore{}, Name: name},
		{Store: &faultyStore{}, Name: name, Holder: "a", TTL: time.Second, RenewInterval: 500 * time.Millisecond},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewElector(%+v) did not panic", bad)
				}
			}()
			leadership.NewElector(bad)
		}()
	}
}

func TestElector_StartStop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := leadership.NewElector(leadership.Config{Store: b.leaders, Name: name, Holder: "a", TTL: 900 * time.Millisecond, Logger: quiet()})
	e.Stop() // never started
	for range 5 {
		e.Start(context.Background())
		e.Start(context.Background())
		e.Stop()
		e.Stop()
	}
	if e.IsLeader() {
		t.Fatal("leader after Stop")
	}
	if got := b.leader(t); got != "" {
		t.Fatalf("lease held by %q after Stop", got)
	}
}

func TestElector_OneLeaderThenTakeover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ttl = 900 * time.Millisecond
	x, y := newCandidate(t, b, "x", ttl), newCandidate(t, b, "y", ttl)
	x.Start(context.Background())
	waitFor(t, "x to lead", x.IsLeader)
	y.Start(context.Background())

	// y keeps trying (every TTL/3) and must keep failing while x renews,
	// across several TTLs.
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		if y.IsLeader() || !x.IsLeader() {
			t.Fatalf("leaders: x=%v y=%v, want x only", x.IsLeader(), y.IsLeader())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := b.leader(t); got != "x" {
		t.Fatalf("leader key = %q, want x", got)
	}

	// Stop resigns, so y takes over at its next try rather than after the
	// TTL.
	x.Stop()
	if x.IsLeader() {
		t.Fatal("x still leader after Stop")
	}
	waitFor(t, "y to take over", y.IsLeader)
	if got := b.leader(t); got != "y" {
		t.Fatalf("leader key = %q, want y", got)
	}
	waitFor(t, "x's notifications", func() bool { return len(x.history()) == 3 })
	if h := x.history(); !equal(h, []bool{false, true, false}) {
		t.Fatalf("x's notifications = %v, want [false true false]", h)
	}
	waitFor(t, "y's notifications", func() bool { return len(y.history()) == 2 })
	if h := y.history(); !equal(h, []bool{false, true}) {
		t.Fatalf("y's notifications = %v, want [false true]", h)
	}
}

func TestElector_StepsDownWhenTakenOver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := newCandidate(t, b, "x", 900*time.Millisecond)
	x.Start(context.Background())
	waitFor(t, "x to lead", x.IsLeader)
	// Someone else now holds the key (x's lease expired during a pause,
	// say): x's next renewal finds it is not ours and steps down.
	if err := b.client.Set(context.Background(), rdb.LeaderKey(b.prefix, name), "other", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "x to step down", func() bool { return !x.IsLeader() })
	x.Stop()
	if got := b.leader(t); got != "other" {
		t.Fatalf("leader key = %q after x stopped, want other's untouched", got)
	}
}

// TestElector_StepsDownBeforeItsLeaseExpires: a leader that cannot reach
// Redis gives up the role while its lease still stands, so it never
// believes it leads once a successor may have taken over.
func TestElector_StepsDownBeforeItsLeaseExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := newCandidate(t, b, "x", 1500*time.Millisecond)
	x.Start(context.Background())
	waitFor(t, "x to lead", x.IsLeader)
	x.store.broken.Store(true)
	waitFor(t, "x to step down", func() bool { return !x.IsLeader() })
	if got := b.leader(t); got != "x" {
		t.Fatalf("x stepped down after its lease expired (leader key = %q); it must step down while the lease is still its own", got)
	}
}

// TestElector_CrashFailover: a leader that dies without resigning is
// replaced once its lease expires, within about 1.42 TTL of the crash.
func TestElector_CrashFailover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ttl = 1200 * time.Millisecond
	x, y := newCandidate(t, b, "x", ttl), newCandidate(t, b, "y", ttl)
	x.Start(context.Background())
	waitFor(t, "x to lead", x.IsLeader)
	y.Start(context.Background())

	x.store.broken.Store(true) // the crash: neither renews nor resigns
	crashed := time.Now()
	x.Stop()
	if got := b.leader(t); got != "x" {
		t.Fatalf("leader key = %q after the crash, want x's left to expire", got)
	}
	waitFor(t, "y to take over", y.IsLeader)
	took := time.Since(crashed)
	t.Logf("crash → successor: %s (TTL %s)", took.Round(10*time.Millisecond), ttl)
	// The lease expires within a TTL, y tries every TTL/3 plus at most
	// TTL/12: 1.42 TTL. The slack is for a loaded machine.
	if bound := ttl + ttl/3 + ttl/12 + 500*time.Millisecond; took > bound {
		t.Fatalf("successor took over %s after the crash, want within %s", took, bound)
	}
}

// TestSubscription_SlowReaderDoesNotBlockRenewal: a subscriber that reads
// nothing for several TTLs neither stops the leader from renewing nor
// loses a change.
func TestSubscription_SlowReaderDoesNotBlockRenewal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ttl = 900 * time.Millisecond
	x := leadership.NewElector(leadership.Config{Store: b.leaders, Name: name, Holder: "x", TTL: ttl, Logger: quiet()})
	stuck := x.Listen() // never read until the end
	defer stuck.Unlisten()
	y := newCandidate(t, b, "y", ttl)
	x.Start(context.Background())
	defer x.Stop()
	waitFor(t, "x to lead", x.IsLeader)
	y.Start(context.Background())
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		if y.IsLeader() || !x.IsLeader() {
			t.Fatalf("leaders: x=%v y=%v while x's subscriber is stuck, want x only", x.IsLeader(), y.IsLeader())
		}
		time.Sleep(50 * time.Millisecond)
	}
	x.Stop()
	var got []bool
	for range 3 {
		got = append(got, (<-stuck.C()).IsLeader)
	}
	if !equal(got, []bool{false, true, false}) {
		t.Fatalf("stuck subscriber's notifications = %v, want [false true false]", got)
	}
	stuck.Unlisten()
	if _, open := <-stuck.C(); open {
		t.Fatal("C still open after Unlisten")
	}
}

// service records whether it runs.
type service struct {
	running atomic.Bool
	starts  atomic.Int32
	mu      sync.Mutex
}

func (s *service) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running.Load() {
		return
	}
	s.running.Store(true)
	s.starts.Add(1)
}

func (s *service) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running.Store(false)
}

// TestRunWhileLeader: the service runs exactly while its elector leads,
// and it has stopped before the lease is resigned.
func TestRunWhileLeader(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ttl = 900 * time.Millisecond
	x := newCandidate(t, b, "x", ttl)
	svc := &service{}
	stop := leadership.RunWhileLeader(x.Elector, svc)
	defer stop()
	if svc.running.Load() {
		t.Fatal("service runs before any election")
	}
	x.Start(context.Background())
	waitFor(t, "the service to start", svc.running.Load)

	// Taken over: the service stops.
	if err := b.client.Set(context.Background(), rdb.LeaderKey(b.prefix, name), "other", 2*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the service to stop", func() bool { return !svc.running.Load() })
	// Elected again once other's lease expires: it starts again.
	waitFor(t, "the service to start again", func() bool { return svc.starts.Load() == 2 && svc.running.Load() })

	// stop first, then the elector: the service is down while the lease
	// is still ours.
	stop()
	if svc.running.Load() {
		t.Fatal("service runs after stop")
	}
	if got := b.leader(t); got != "x" {
		t.Fatalf("leader key = %q after stop, want x's until the elector stops", got)
	}
	x.Stop()
	if got := b.leader(t); got != "" {
		t.Fatalf("leader key = %q after the elector stopped, want none", got)
	}
}

// countingLeaders is rdb.Leaders (resignations announced) counting the
// elections tried.
type countingLeaders struct {
	*rdb.Leaders
	elects atomic.Int32
}

func (c *countingLeaders) Elect(ctx context.Context, n, h string, ttl time.Duration) (bool, error) {
	defer c.elects.Add(1)
	return c.Leaders.Elect(ctx, n, h, ttl)
}

// TestElector_ResignationWakesFollowers: with a Store that announces
// resignations (rdb.Leaders), a follower takes over at once when the leader
// stops, not at its next try a RenewInterval later.
func TestElector_ResignationWakesFollowers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ttl = 30 * time.Second // tries every 10 s
	start := func(holder string) (*leadership.Elector, *countingLeaders) {
		store := &countingLeaders{Leaders: b.leaders}
		e := leadership.NewElector(leadership.Config{Store: store, Name: name, Holder: holder, TTL: ttl, Logger: quiet()})
		e.Start(context.Background())
		t.Cleanup(e.Stop)
		return e, store
	}
	x, _ := start("x")
	waitFor(t, "x to lead", x.IsLeader)
	y, ys := start("y")
	channel := rdb.LeaderResignedChannel(b.prefix, name)
	waitFor(t, "both to listen for resignations", func() bool {
		return b.client.PubSubNumSub(context.Background(), channel).Val()[channel] == 2
	})
	waitFor(t, "y's first try", func() bool { return ys.elects.Load() == 1 })
	if y.IsLeader() {
		t.Fatal("y leads beside x")
	}
	x.Stop()
	stopped := time.Now()
	waitFor(t, "y to take over", y.IsLeader)
	took := time.Since(stopped)
	t.Logf("x stopped → y leads: %s (y's next try was %s away)", took.Round(time.Millisecond), ttl/3)
	if took > ttl/6 {
		t.Fatalf("y took over %s after x resigned, want at once (well before its next try, %s)", took, ttl/3)
	}
}
