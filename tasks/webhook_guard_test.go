package tasks

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// newGuardClient opens a client of its own on the shared Redis, as each API
// process has, and closes it when the test ends.
func newGuardClient(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(testenv.RedisURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// guardPrefix returns a prefix of the test's own and deletes its keys when
// the test ends.
func guardPrefix(tb testing.TB, c *redis.Client) string {
	tb.Helper()
	prefix := "tasks-guard-test:" + orcheo.NewID()
	tb.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.Keys(ctx, prefix+":*").Result()
		if len(keys) > 0 {
			_ = c.Del(ctx, keys...).Err()
		}
	})
	return prefix
}

// newTestGuard is a guard on the shared Redis under a prefix of its own.
func newTestGuard(tb testing.TB) (*WebhookGuard, *redis.Client) {
	tb.Helper()
	c := newGuardClient(tb)
	return NewWebhookGuard(c, guardPrefix(tb, c)), c
}

// fakeClock is a settable now for WebhookGuard.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// allow calls g.Allow and fails the test on an error.
func allow(tb testing.TB, g *WebhookGuard, key string, limit int, window time.Duration) (bool, time.Duration) {
	tb.Helper()
	ok, retry, err := g.Allow(context.Background(), key, limit, window)
	if err != nil {
		tb.Fatalf("allow %s: %v", key, err)
	}
	if ok && retry != 0 {
		tb.Fatalf("allow %s: admitted with retryAfter %s", key, retry)
	}
	if !ok && retry < time.Millisecond {
		tb.Fatalf("allow %s: refused with retryAfter %s", key, retry)
	}
	return ok, retry
}

// wantAdmitted makes n calls and fails unless exactly want are admitted.
func wantAdmitted(tb testing.TB, g *WebhookGuard, key string, limit int, window time.Duration, n, want int) {
	tb.Helper()
	got := 0
	for i := 0; i < n; i++ {
		if ok, _ := allow(tb, g, key, limit, window); ok {
			got++
		}
	}
	if got != want {
		tb.Fatalf("%s: %d of %d admitted, want %d", key, got, n, want)
	}
}

// bucketWidth is the width Allow uses for window.
func bucketWidth(window time.Duration) time.Duration {
	w := (window.Milliseconds() + WebhookRateBuckets - 1) / WebhookRateBuckets
	return time.Duration(w) * time.Millisecond
}

func TestWebhookGuard_Allow(t *testing.T) {
	t.Parallel()

	t.Run("LimitThenRefused", func(t *testing.T) {
		t.Parallel()
		g, _ := newTestGuard(t)
		const limit, window = 5, time.Minute
		wantAdmitted(t, g, "wf:1", limit, window, limit, limit)
		for i := 0; i < 3; i++ {
			ok, retry := allow(t, g, "wf:1", limit, window)
			if ok {
				t.Fatalf("request %d of a limit of %d admitted", limit+1+i, limit)
			}
			// The first request leaves the window a minute after it came,
			// rounded up to its bucket's end.
			if retry < window-5*time.Second || retry > window+bucketWidth(window) {
				t.Fatalf("retryAfter = %s, want about %s", retry, window)
			}
		}
		// Another key has its own window.
		wantAdmitted(t, g, "wf:2", limit, window, limit+1, limit)
	})

	t.Run("WindowSlides", func(t *testing.T) {
		t.Parallel()
		g, _ := newTestGuard(t)
		clock := &fakeClock{}
		g.now = clock.now
		const limit, window = 3, 10 * time.Second
		width := bucketWidth(window)
		// At a bucket's start (buckets count from the Unix epoch), so the
		// expected times are exact.
		t0 := time.UnixMilli((1_700_000_000_000/width.Milliseconds() + 1) * width.Milliseconds())
		clock.set(t0)
		wantAdmitted(t, g, "wf", limit, window, 1, 1)
		t1 := t0.Add(24 * width) // about 4 s later, at a bucket's start too
		clock.set(t1)
		wantAdmitted(t, g, "wf", limit, window, 3, 2)

		// Full: the request at t0 is counted until its bucket is out of
		// the window, at t0 + width + window.
		ok, retry := allow(t, g, "wf", limit, window)
		if want := t0.Add(width + window).Sub(t1); ok || retry != want {
			t.Fatalf("at t1: ok %v retryAfter %s, want refused, %s", ok, retry, want)
		}
		clock.set(t0.Add(window + width - time.Millisecond))
		if ok, retry := allow(t, g, "wf", limit, window); ok || retry != time.Millisecond {
			t.Fatalf("1ms before the first request leaves: ok %v retryAfter %s, want refused, 1ms", ok, retry)
		}
		clock.set(t0.Add(window + width))
		wantAdmitted(t, g, "wf", limit, window, 2, 1)

		// The two from t1 leave together.
		ok, retry = allow(t, g, "wf", limit, window)
		if want := t1.Sub(t0); ok || retry != want {
			t.Fatalf("ok %v retryAfter %s, want refused, %s", ok, retry, want)
		}
		clock.set(t1.Add(width + window))
		wantAdmitted(t, g, "wf", limit, window, 3, 2)

		// A window later everything has left.
		clock.set(t0.Add(10 * window))
		wantAdmitted(t, g, "wf", limit, window, limit+2, limit)
	})

	t.Run("SlidesOnRedisTime", func(t *testing.T) {
		t.Parallel()
		g, _ := newTestGuard(t)
		const limit, window = 2, time.Second
		wantAdmitted(t, g, "wf", limit, window, limit+1, limit)
		_, retry := allow(t, g, "wf", limit, window)
		if retry > window+bucketWidth(window) {
			t.Fatalf("retryAfter = %s, want at most %s", retry, window+bucketWidth(window))
		}
		// Waiting what retryAfter says is enough.
		time.Sleep(retry)
		if ok, retry := allow(t, g, "wf", limit, window); !ok {
			t.Fatalf("refused after waiting retryAfter; retryAfter now %s", retry)
		}
	})

	t.Run("IdleKeysExpire", func(t *testing.T) {
		t.Parallel()
		g, c := newTestGuard(t)
		const window = 30 * time.Second
		allow(t, g, "wf", 10, window)
		ttl, err := c.PTTL(context.Background(), g.rdb.WebhookRateKey("wf")).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > window+bucketWidth(window) {
			t.Fatalf("TTL of the window = %s, want at most %s", ttl, window+bucketWidth(window))
		}
	})

	t.Run("BoundedMemory", func(t *testing.T) {
		t.Parallel()
		g, c := newTestGuard(t)
		clock := &fakeClock{}
		g.now = clock.now
		const window = time.Minute
		t0 := time.UnixMilli(1_700_000_000_000)
		for i := 0; i < 1000; i++ {
			clock.set(t0.Add(time.Duration(i) * 377 * time.Millisecond))
			allow(t, g, "wf", 1_000_000, window)
		}
		n, err := c.HLen(context.Background(), g.rdb.WebhookRateKey("wf")).Result()
		if err != nil {
			t.Fatal(err)
		}
		// The buckets a window spans, the partial one, and "w".
		if n > WebhookRateBuckets+2 {
			t.Fatalf("the window holds %d fields, want at most %d", n, WebhookRateBuckets+2)
		}
	})

	t.Run("NewWindowStartsOver", func(t *testing.T) {
		t.Parallel()
		g, _ := newTestGuard(t)
		wantAdmitted(t, g, "wf", 2, time.Minute, 3, 2)
		wantAdmitted(t, g, "wf", 2, time.Hour, 3, 2)
	})

	t.Run("LowerLimit", func(t *testing.T) {
		t.Parallel()
		g, _ := newTestGuard(t)
		wantAdmitted(t, g, "wf", 10, time.Minute, 5, 5)
		if ok, retry := allow(t, g, "wf", 2, time.Minute); ok || retry > time.Minute+time.Second {
			t.Fatalf("over a lowered limit: ok %v retryAfter %s", ok, retry)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		g, _ := newTestGuard(t)
		ctx := context.Background()
		for _, c := range []struct {
			key    string
			limit  int
			window time.Duration
		}{{"wf", 0, time.Minute}, {"wf", 1, 0}, {"wf", 1, time.Microsecond}, {"", 1, time.Minute}} {
			if ok, _, err := g.Allow(ctx, c.key, c.limit, c.window); err == nil || ok {
				t.Errorf("Allow(%q, %d, %s) = %v, %v; want an error", c.key, c.limit, c.window, ok, err)
			}
		}
		if _, err := g.FirstSeen(ctx, "sig", 0); err == nil {
			t.Error("FirstSeen with ttl 0: no error")
		}
		if _, err := g.FirstSeen(ctx, "", time.Minute); err == nil {
			t.Error("FirstSeen of an empty key: no error")
		}
	})
}

// Two API processes have a client each on one Redis: the limit is theirs
// together.
func TestWebhookGuard_SharedAcrossClients(t *testing.T) {
	t.Parallel()
	c1, c2 := newGuardClient(t), newGuardClient(t)
	prefix := guardPrefix(t, c1)
	g1, g2 := NewWebhookGuard(c1, prefix), NewWebhookGuard(c2, prefix)
	const limit, window = 7, time.Minute
	admitted := 0
	for i := 0; i < 2*limit; i++ {
		g := g1
		if i%2 == 1 {
			g = g2
		}
		if ok, _ := allow(t, g, "wf:shared", limit, window); ok {
			admitted++
		}
	}
	if admitted != limit {
		t.Fatalf("%d admitted across two clients, want %d", admitted, limit)
	}
	for _, g := range []*WebhookGuard{g1, g2} {
		if ok, _ := allow(t, g, "wf:shared", limit, window); ok {
			t.Fatal("admitted over the shared limit")
		}
	}
	first1, err := g1.FirstSeen(context.Background(), "sig", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	first2, err := g2.FirstSeen(context.Background(), "sig", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !first1 || first2 {
		t.Fatalf("FirstSeen on two clients = %v, %v; want true, false", first1, first2)
	}
}

// Many requests at once on two clients never get more than the limit in,
// and get exactly the limit in when all fall within the window.
func TestWebhookGuard_Concurrent(t *testing.T) {
	t.Parallel()
	c1, c2 := newGuardClient(t), newGuardClient(t)
	prefix := guardPrefix(t, c1)
	guards := []*WebhookGuard{NewWebhookGuard(c1, prefix), NewWebhookGuard(c2, prefix)}
	const limit, window, goroutines, each = 100, time.Minute, 50, 10
	var admitted, seen atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func(g *WebhookGuard) {
			defer wg.Done()
			ctx := context.Background()
			for j := 0; j < each; j++ {
				ok, _, err := g.Allow(ctx, "wf:flood", limit, window)
				if err != nil {
					errs <- err
					return
				}
				if ok {
					admitted.Add(1)
				}
			}
			first, err := g.FirstSeen(ctx, "sig:flood", time.Minute)
			if err != nil {
				errs <- err
				return
			}
			if first {
				seen.Add(1)
			}
		}(guards[i%2])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if admitted.Load() != limit {
		t.Fatalf("%d of %d concurrent requests admitted, want %d", admitted.Load(), goroutines*each, limit)
	}
	if seen.Load() != 1 {
		t.Fatalf("FirstSeen true %d times at once, want once", seen.Load())
	}
}

func TestWebhookGuard_FirstSeen(t *testing.T) {
	t.Parallel()
	g, c := newTestGuard(t)
	ctx := context.Background()
	const ttl = 200 * time.Millisecond
	start := time.Now()
	for i, want := range []bool{true, false, false} {
		got, err := g.FirstSeen(ctx, "sig:abc", ttl)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("call %d: FirstSeen = %v, want %v", i+1, got, want)
		}
	}
	if pttl := c.PTTL(ctx, g.rdb.WebhookSeenKey("sig:abc")).Val(); pttl <= 0 || pttl > ttl {
		t.Fatalf("TTL of the record = %s, want at most %s", pttl, ttl)
	}
	// Redis forgets the key after ttl; poll for it rather than guess.
	deadline := time.Now().Add(5 * time.Second)
	for {
		first, err := g.FirstSeen(ctx, "sig:abc", ttl)
		if err != nil {
			t.Fatal(err)
		}
		if first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still seen 5s after a ttl of %s", ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if elapsed := time.Since(start); elapsed < ttl {
		t.Fatalf("forgotten after %s, before its ttl of %s", elapsed, ttl)
	}
}

// Guards of two prefixes (two deployments, or test packages) on one Redis
// share nothing.
func TestWebhookGuard_Prefixes(t *testing.T) {
	t.Parallel()
	c := newGuardClient(t)
	ga, gb := NewWebhookGuard(c, guardPrefix(t, c)), NewWebhookGuard(c, guardPrefix(t, c))
	ctx := context.Background()
	wantAdmitted(t, ga, "wf:1", 3, time.Minute, 4, 3)
	wantAdmitted(t, gb, "wf:1", 3, time.Minute, 4, 3)
	for _, g := range []*WebhookGuard{ga, gb} {
		if first, err := g.FirstSeen(ctx, "sig", time.Minute); err != nil || !first {
			t.Fatalf("FirstSeen under %s = %v, %v; want true", g.cfg.Prefix, first, err)
		}
	}
	if g := NewWebhookGuard(c, ""); g.cfg.Prefix != PrefixDefault {
		t.Fatalf("empty prefix = %q, want %q", g.cfg.Prefix, PrefixDefault)
	}
}

// A long key is hashed into a bounded Redis key, and no key used as is
// equals another's hash.
func TestWebhookGuard_LongKeys(t *testing.T) {
	t.Parallel()
	g, c := newTestGuard(t)
	ctx := context.Background()
	long := "ip:wf:" + strings.Repeat("x", 10_000)
	wantAdmitted(t, g, long, 2, time.Minute, 3, 2)
	hashed, err := webhookKey(long)
	if err != nil {
		t.Fatal(err)
	}
	if len(hashed) > WebhookMaxKeyBytes || hashed[0] != '#' {
		t.Fatalf("webhookKey(long) = %q", hashed)
	}
	keys, err := c.Keys(ctx, g.cfg.Prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if len(k) > len(g.cfg.Prefix)+len(":webhook:rate:")+WebhookMaxKeyBytes {
			t.Fatalf("Redis key of %d bytes", len(k))
		}
	}
	// The hash itself, given as a key, is hashed again: its own window.
	wantAdmitted(t, g, hashed, 2, time.Minute, 2, 2)
	if k, _ := webhookKey("wf:1"); k != "wf:1" {
		t.Fatalf("webhookKey(wf:1) = %q, want it as is", k)
	}
}

// orcheo dev runs the API on miniredis: the scripts work there too.
func TestWebhookGuard_Miniredis(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	g := NewWebhookGuard(c, "")
	wantAdmitted(t, g, "wf", 3, time.Minute, 5, 3)
	if ok, retry := allow(t, g, "wf", 3, time.Minute); ok || retry > time.Minute+time.Second {
		t.Fatalf("ok %v retryAfter %s", ok, retry)
	}
	for i, want := range []bool{true, false} {
		if got, err := g.FirstSeen(context.Background(), "sig", time.Minute); err != nil || got != want {
			t.Fatalf("call %d: FirstSeen = %v, %v; want %v", i+1, got, err, want)
		}
	}
}

// The Queue's guard shares its client; with Redis gone both calls return
// an error (the caller picks fail open or closed) and ok/first false.
func TestWebhookGuard_QueueAndRedisDown(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	q, err := NewQueue(Config{RedisURL: rs.URL(), Prefix: "tasks-guard-down"}, nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	g := q.WebhookGuard()
	if g.cfg.Prefix != "tasks-guard-down" {
		t.Fatalf("the Queue's guard has prefix %q", g.cfg.Prefix)
	}
	wantAdmitted(t, g, "wf", 1, time.Minute, 2, 1)
	// One pool: the guard's connection is the Queue's.
	if n := q.broker.rdb.client.PoolStats().TotalConns; n != 1 {
		t.Fatalf("the Queue's client has %d connections after the guard's calls, want 1", n)
	}
	rs.Kill()
	ctx := context.Background()
	if ok, _, err := g.Allow(ctx, "wf", 1, time.Minute); err == nil || ok {
		t.Fatalf("Allow with Redis down = %v, %v; want an error", ok, err)
	}
	if first, err := g.FirstSeen(ctx, "sig", time.Minute); err == nil || first {
		t.Fatalf("FirstSeen with Redis down = %v, %v; want an error", first, err)
	}
}

// A Redis that accepts connections and never answers costs a webhook about
// WebhookGuardTimeout per try, not go-redis's 3 s.
func TestWebhookGuard_RedisHangs(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // read nothing, answer nothing
		}
	}()
	q, err := NewQueue(Config{RedisURL: "redis://" + l.Addr().String() + "/0", Prefix: "tasks-guard-hangs"}, nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	g := q.WebhookGuard()
	start := time.Now()
	ok, _, err := g.Allow(context.Background(), "wf", 1, time.Minute)
	if err == nil || ok {
		t.Fatalf("Allow on a hung Redis = %v, %v; want an error", ok, err)
	}
	// Two tries (MaxRetries 1) of WebhookGuardTimeout and a backoff; the
	// default read timeout would take 6 s.
	if elapsed := time.Since(start); elapsed > 2900*time.Millisecond {
		t.Fatalf("Allow on a hung Redis took %s", elapsed)
	}
}

// BenchmarkWebhookGuardAllow measures one Allow (one script call) on a
// private redis-server: admitted, refused, and from many goroutines.
func BenchmarkWebhookGuardAllow(b *testing.B) {
	rs := testenv.StartRedis(b)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	b.Cleanup(func() { _ = c.Close() })
	g := NewWebhookGuard(c, "bench")
	ctx := context.Background()
	run := func(b *testing.B, key string, limit int) {
		for i := 0; i < b.N; i++ {
			if _, _, err := g.Allow(ctx, key, limit, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("admitted", func(b *testing.B) { run(b, "wf:admitted", 1_000_000_000) })
	b.Run("refused", func(b *testing.B) { run(b, "wf:refused", 1) })
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := g.Allow(ctx, "wf:parallel", 1_000_000_000, time.Minute); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// TestWebhookGuard_Remember: the first value stored under a key stays, and
// every later call gets it back whatever value it offers, which is how the
// server tells a redelivery (same delivery id) from a replay (another one).
func TestWebhookGuard_Remember(t *testing.T) {
	t.Parallel()
	g, _ := newTestGuard(t)
	ctx := context.Background()
	for i, tc := range []struct{ value, want string }{
		{"delivery-1", "delivery-1"},
		{"delivery-1", "delivery-1"},
		{"delivery-2", "delivery-1"},
	} {
		got, err := g.Remember(ctx, "replay:body", tc.value, time.Minute)
		if err != nil || got != tc.want {
			t.Fatalf("call %d: Remember(%s) = %q, %v; want %q", i+1, tc.value, got, err, tc.want)
		}
	}
	if _, err := g.Remember(ctx, "replay:body", "", time.Minute); err == nil {
		t.Error("Remember of an empty value: no error")
	}
}

// TestWebhookGuard_Forget removes a remembered key only while it holds the
// value given: a forget never undoes what another request remembered.
func TestWebhookGuard_Forget(t *testing.T) {
	t.Parallel()
	g, _ := newTestGuard(t)
	ctx := context.Background()
	if _, err := g.Remember(ctx, "replay:f", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := g.Forget(ctx, "replay:f", "b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Remember(ctx, "replay:f", "c", time.Minute); got != "a" {
		t.Fatalf("after forgetting another value: %q, want a kept", got)
	}
	if err := g.Forget(ctx, "replay:f", "a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Remember(ctx, "replay:f", "c", time.Minute); got != "c" {
		t.Fatalf("after forgetting its value: %q, want the key free (c)", got)
	}
}
