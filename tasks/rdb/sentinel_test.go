package rdb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/tasks/rdb"
)

// TestOpen_SentinelFailover: a client opened on a redis+sentinel:// URL
// writes to the primary; when the primary is killed, the sentinels promote
// the replica, and the same client's commands, a BLMOVE that was blocked
// across the failover, and a pub/sub subscription all go on against the
// new primary.
func TestOpen_SentinelFailover(t *testing.T) {
	t.Parallel()
	s := testenv.StartSentinels(t)
	c, err := rdb.Open(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	if err := c.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatalf("set on the primary: %v", err)
	}
	sub := c.Subscribe(ctx, "chan")
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}

	// A consumer blocked on an empty list, as the broker waits, until a
	// message comes.
	moved := make(chan string, 1)
	go func() {
		for {
			v, err := c.BLMove(ctx, "q", "processing", "LEFT", "RIGHT", time.Second).Result()
			if err == nil {
				moved <- v
				return
			}
			if !errors.Is(err, redis.Nil) {
				time.Sleep(100 * time.Millisecond) // the primary is down: retry, as the broker does
			}
		}
	}()

	old := s.KillPrimary()
	promoted := s.WaitFailover(old)
	t.Logf("primary %s killed, %s promoted", old, promoted)

	// The client follows: a write within a few seconds of the promotion.
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := c.Set(ctx, "k", "after", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write succeeded after the failover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	direct := redis.NewClient(&redis.Options{Addr: promoted})
	t.Cleanup(func() { _ = direct.Close() })
	if v, err := direct.Get(ctx, "k").Result(); err != nil || v != "after" {
		t.Fatalf("k on the promoted primary = %q, %v; want after", v, err)
	}

	if err := c.RPush(ctx, "q", "m1").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-moved:
		if v != "m1" {
			t.Fatalf("BLMOVE got %q, want m1", v)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the blocked BLMOVE never got the message pushed after the failover")
	}

	// The subscription reconnects on its own; publish until it hears.
	heard := make(chan struct{})
	go func() {
		for {
			m, err := sub.ReceiveMessage(ctx)
			if err == nil && m.Payload == "hello" {
				close(heard)
				return
			}
			if errors.Is(err, redis.ErrClosed) {
				return
			} else if err != nil {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	deadline = time.Now().Add(20 * time.Second)
	for {
		_ = c.Publish(ctx, "chan", "hello").Err()
		select {
		case <-heard:
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscription heard nothing published after the failover")
		}
	}
}
