package tasks

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// changesClient is a client of its own on url, as each API process has.
func changesClient(tb testing.TB, url string) redis.UniversalClient {
	tb.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	opt.MaxRetries, opt.DialTimeout = 1, time.Second
	c := redis.NewClient(opt)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// subscribe starts a subscription ended at the test's end.
func subscribe(tb testing.TB, f *ChangeFeed) <-chan orcheo.ChangeEvent {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events := f.Subscribe(ctx)
	tb.Cleanup(func() {
		cancel()
		for range events { // wait for the goroutine to end
		}
	})
	return events
}

// nextEvent waits up to 10 s for the next event.
func nextEvent(tb testing.TB, events <-chan orcheo.ChangeEvent) orcheo.ChangeEvent {
	tb.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			tb.Fatal("the subscription ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		tb.Fatal("no change event within 10 s")
	}
	return orcheo.ChangeEvent{}
}

// wantEvent fails unless the next event is want.
func wantEvent(tb testing.TB, events <-chan orcheo.ChangeEvent, want orcheo.ChangeEvent) {
	tb.Helper()
	if got := nextEvent(tb, events); got != want {
		tb.Fatalf("change event %+v, want %+v", got, want)
	}
}

var (
	connected    = orcheo.ChangeEvent{Kind: orcheo.ChangeConnected}
	disconnected = orcheo.ChangeEvent{Kind: orcheo.ChangeDisconnected}
)

func changed(id string) orcheo.ChangeEvent {
	return orcheo.ChangeEvent{Kind: orcheo.ChangeWorkflow, WorkflowID: id}
}

func TestChangeFeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("BetweenProcesses", func(t *testing.T) {
		t.Parallel()
		url := testenv.RedisURL(t)
		prefix := "changes-test-" + orcheo.NewID()
		a := NewChangeFeed(changesClient(t, url), prefix, testLogger())
		b := NewChangeFeed(changesClient(t, url), prefix, testLogger())
		other := NewChangeFeed(changesClient(t, url), prefix+"-other", testLogger())
		eventsA, eventsB, eventsOther := subscribe(t, a), subscribe(t, b), subscribe(t, other)
		wantEvent(t, eventsA, connected)
		wantEvent(t, eventsB, connected)
		wantEvent(t, eventsOther, connected)
		id := orcheo.NewID()
		if err := b.Publish(ctx, id); err != nil {
			t.Fatal(err)
		}
		wantEvent(t, eventsA, changed(id))
		wantEvent(t, eventsB, changed(id)) // the publisher hears itself too
		// Another prefix (another deployment or test) hears nothing of it.
		if err := other.Publish(ctx, "mine"); err != nil {
			t.Fatal(err)
		}
		wantEvent(t, eventsOther, changed("mine"))
	})

	t.Run("RedisRestarted", func(t *testing.T) {
		t.Parallel()
		srv := testenv.StartRedis(t)
		f := NewChangeFeed(changesClient(t, srv.URL()), "changes-test", testLogger())
		events := subscribe(t, f)
		wantEvent(t, events, connected)
		srv.Kill()
		wantEvent(t, events, disconnected)
		if err := f.Publish(ctx, "lost"); err == nil {
			t.Fatal("publish with Redis down: no error")
		}
		srv.Start()
		// Resubscribed by go-redis: reported, so that caches flush what
		// they missed.
		wantEvent(t, events, connected)
		id := orcheo.NewID()
		if err := f.Publish(ctx, id); err != nil {
			t.Fatal(err)
		}
		wantEvent(t, events, changed(id))
	})

	t.Run("SilentConnection", func(t *testing.T) {
		t.Parallel()
		url := testenv.RedisURL(t)
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		p := startBlackhole(t, opt.Addr)
		opt.Addr, opt.MaxRetries = p.addr(), 1
		via := redis.NewClient(opt)
		t.Cleanup(func() { _ = via.Close() })
		prefix := "changes-test-" + orcheo.NewID()
		f := NewChangeFeed(via, prefix, testLogger())
		f.PingInterval = 50 * time.Millisecond
		events := subscribe(t, f)
		wantEvent(t, events, connected)

		// The network swallows everything without closing anything:
		// only the unanswered pings tell.
		p.freeze(true)
		wantEvent(t, events, disconnected)
		p.freeze(false)
		// A new subscription, reported as such.
		wantEvent(t, events, connected)
		direct := NewChangeFeed(changesClient(t, url), prefix, testLogger())
		id := orcheo.NewID()
		if err := direct.Publish(ctx, id); err != nil {
			t.Fatal(err)
		}
		for {
			ev := nextEvent(t, events)
			if ev == changed(id) {
				break
			}
			if ev != connected { // a redial in flight may report itself again
				t.Fatalf("change event %+v, want %+v", ev, changed(id))
			}
		}
	})

	t.Run("Miniredis", func(t *testing.T) {
		// orcheo dev's in-process Redis: pub/sub, and pings while
		// subscribed, answered as a real server does.
		t.Parallel()
		mr := miniredis.RunT(t)
		f := NewChangeFeed(changesClient(t, "redis://"+mr.Addr()+"/0"), "", testLogger())
		f.PingInterval = 10 * time.Millisecond
		events := subscribe(t, f)
		wantEvent(t, events, connected)
		for i := 0; i < 5; i++ {
			// Long enough for pings between publishes: each must be
			// answered, or the feed would report a disconnection first.
			time.Sleep(30 * time.Millisecond)
			id := orcheo.NewID()
			if err := f.Publish(ctx, id); err != nil {
				t.Fatal(err)
			}
			wantEvent(t, events, changed(id))
		}
	})

	t.Run("EndsWithItsContext", func(t *testing.T) {
		t.Parallel()
		f := NewChangeFeed(changesClient(t, testenv.RedisURL(t)), "changes-test-"+orcheo.NewID(), testLogger())
		sctx, cancel := context.WithCancel(ctx)
		events := f.Subscribe(sctx)
		wantEvent(t, events, connected)
		cancel()
		for {
			select {
			case _, ok := <-events:
				if !ok {
					return
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the subscription did not end with its context")
			}
		}
	})
}

// blackhole is a TCP proxy that, frozen, reads and drops everything
// either way without closing a connection: a cut network as a socket sees
// it.
type blackhole struct {
	ln     net.Listener
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startBlackhole(tb testing.TB, upstream string) *blackhole {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &blackhole{ln: ln}
	tb.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = down.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, down, up)
			p.mu.Unlock()
			go p.pipe(up, down)
			go p.pipe(down, up)
		}
	}()
	return p
}

func (p *blackhole) addr() string { return p.ln.Addr().String() }

func (p *blackhole) freeze(on bool) { p.frozen.Store(on) }

func (p *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = dst.Close()
			}
			return
		}
	}
}

func TestNewChangeFeed_Defaults(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	f := NewChangeFeed(c, "", nil)
	if f.channel != PrefixDefault+":changes" || f.PingInterval != ChangeFeedPingIntervalDefault || f.logger == nil {
		t.Fatalf("defaults: channel %q, ping interval %s, logger %v", f.channel, f.PingInterval, f.logger)
	}
	for name, fn := range map[string]func(){
		"nil client":   func() { NewChangeFeed(nil, "p", nil) },
		"brace prefix": func() { NewChangeFeed(c, "a{b}", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}
