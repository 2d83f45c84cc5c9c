package rdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// LeaderKey is the lease of leadership name: P:leader:<name>, a string
// holding the leader's id, with a TTL. It is one key per script, so it
// needs no hash tag on Redis Cluster.
func LeaderKey(prefix, name string) string { return prefix + ":leader:" + name }

// LeaderResignedChannel is the pub/sub channel on which a resignation of
// leadership name is announced (the payload is the holder that resigned),
// so followers try at once instead of at their next tick.
func LeaderResignedChannel(prefix, name string) string { return LeaderKey(prefix, name) + ":resigned" }

// Leaders keeps the leases of named leaderships (the rescuer's, the
// beat's) in Redis, on the process's one client. It implements
// leadership.Store. Safe for concurrent use.
type Leaders struct {
	client redis.UniversalClient
	prefix string
}

// NewLeaders returns the leases under prefix on client. The caller keeps
// owning the client.
func NewLeaders(client redis.UniversalClient, prefix string) *Leaders {
	return &Leaders{client: client, prefix: prefix}
}

// Leaders returns the leases of leaderships on r's client and prefix.
func (r *RDB) Leaders() *Leaders { return NewLeaders(r.client, r.prefix) }

// Elect makes holder the leader of name for ttl if no one holds it (SET NX
// PX: one command), and reports whether holder leads now.
func (l *Leaders) Elect(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	ok, err := l.client.SetNX(ctx, LeaderKey(l.prefix, name), holder, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("elect %s: %w", name, err)
	}
	return ok, nil
}

// leaderReelectCmd extends a leadership while it is still ours.
//
// KEYS[1] -> P:leader:<name>
// ARGV[1] -> holder
// ARGV[2] -> ttl in ms
// Returns 1 if extended, 0 if someone else (or no one) holds it.
var leaderReelectCmd = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// Reelect extends holder's leadership of name to ttl from now if holder
// still holds it.
func (l *Leaders) Reelect(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	n, err := leaderReelectCmd.Run(ctx, l.client, []string{LeaderKey(l.prefix, name)}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("reelect %s: %w", name, err)
	}
	return n == 1, nil
}

// leaderResignCmd gives up a leadership if it is still ours, and announces
// it. A channel is not a key, so it is an ARGV (Redis Cluster delivers a
// PUBLISH to subscribers on every node).
//
// KEYS[1] -> P:leader:<name>
// ARGV[1] -> holder
// ARGV[2] -> P:leader:<name>:resigned, the channel to announce it on
// Returns 1 if deleted, 0 if it was not ours.
var leaderResignCmd = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	redis.call("DEL", KEYS[1])
	redis.call("PUBLISH", ARGV[2], ARGV[1])
	return 1
end
return 0`)

// Resign ends holder's leadership of name if holder still holds it, and
// tells the subscribers of SubscribeResigned, so a successor takes over
// at once instead of after the TTL.
func (l *Leaders) Resign(ctx context.Context, name, holder string) error {
	err := leaderResignCmd.Run(ctx, l.client, []string{LeaderKey(l.prefix, name)}, holder,
		LeaderResignedChannel(l.prefix, name)).Err()
	if err != nil {
		return fmt.Errorf("resign %s: %w", name, err)
	}
	return nil
}

// SubscribeResigned calls fn with the holder each time a holder of
// leadership name resigns, from a goroutine of its own, until stop is
// called. The subscription holds one connection of the client's pool and
// reconnects by itself (after a Sentinel failover too); a resignation
// announced while it was disconnected is missed, which costs a follower
// only the wait until its next try.
func (l *Leaders) SubscribeResigned(name string, fn func(holder string)) (stop func()) {
	ps := l.client.Subscribe(context.Background(), LeaderResignedChannel(l.prefix, name))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ps.Channel() {
			fn(m.Payload)
		}
	}()
	return func() {
		_ = ps.Close()
		<-done
	}
}

// Leader returns the holder of leadership name, or "" when no one holds it.
func (l *Leaders) Leader(ctx context.Context, name string) (string, error) {
	v, err := l.client.Get(ctx, LeaderKey(l.prefix, name)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("leader of %s: %w", name, err)
	}
	return v, nil
}
