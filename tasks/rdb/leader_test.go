package rdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/tasks/rdb"
)

func TestLeaders_OnlyWhileOurs(t *testing.T) {
	t.Parallel()
	c, err := rdb.Open(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	testLeaders(t, c)
}

// TestLeaders_OnCluster: the leases work on a real Redis Cluster (each
// script touches one key, so any slot will do).
func TestLeaders_OnCluster(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartRedisCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs})
	t.Cleanup(func() { _ = c.Close() })
	testLeaders(t, c)
}

// testLeaders elects, re-elects and resigns on c.
func testLeaders(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	prefix := "rdb-leader-test:" + orcheo.NewID()
	l := rdb.NewLeaders(c, prefix)
	t.Cleanup(func() { c.Del(context.Background(), rdb.LeaderKey(prefix, "l")) })

	leader := func() string {
		t.Helper()
		v, err := l.Leader(ctx, "l")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := leader(); got != "" {
		t.Fatalf("leader before any election = %q", got)
	}
	if ok, err := l.Elect(ctx, "l", "a", time.Minute); err != nil || !ok {
		t.Fatalf("elect a = %v, %v; want true", ok, err)
	}
	if ok, err := l.Elect(ctx, "l", "b", time.Minute); err != nil || ok {
		t.Fatalf("elect b while a leads = %v, %v; want false", ok, err)
	}
	if ok, err := l.Reelect(ctx, "l", "b", time.Minute); err != nil || ok {
		t.Fatalf("reelect b = %v, %v; want false", ok, err)
	}
	if ok, err := l.Reelect(ctx, "l", "a", 2*time.Minute); err != nil || !ok {
		t.Fatalf("reelect a = %v, %v; want true", ok, err)
	}
	if ttl := c.PTTL(ctx, rdb.LeaderKey(prefix, "l")).Val(); ttl <= time.Minute {
		t.Fatalf("TTL after reelect = %s, want it extended to about 2m", ttl)
	}
	if err := l.Resign(ctx, "l", "b"); err != nil {
		t.Fatal(err)
	}
	if got := leader(); got != "a" {
		t.Fatalf("after b resigned, leader = %q, want a", got)
	}
	// Only a resignation that deleted the lease is announced: b's above
	// was not; a's is, naming a.
	heard := make(chan string, 4)
	stop := l.SubscribeResigned("l", func(holder string) { heard <- holder })
	defer stop()
	channel := rdb.LeaderResignedChannel(prefix, "l")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n := c.PubSubNumSub(ctx, channel).Val()[channel]; n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the resignation subscription never started")
		}
	}
	if err := l.Resign(ctx, "l", "b"); err != nil {
		t.Fatal(err)
	}
	if err := l.Resign(ctx, "l", "a"); err != nil {
		t.Fatal(err)
	}
	if got := leader(); got != "" {
		t.Fatalf("after a resigned, leader = %q, want none", got)
	}
	select {
	case h := <-heard:
		if h != "a" {
			t.Fatalf("resignation announced for %q, want a (b's resignation deleted nothing)", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a's resignation was not announced")
	}
	if ok, err := l.Reelect(ctx, "l", "a", time.Minute); err != nil || ok {
		t.Fatalf("reelect a after resigning = %v, %v; want false", ok, err)
	}
}
