package tasks

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/sirupsen/logrus"
)

// Elector defaults.
const (
	// ElectorTTLDefault is how long a leadership lasts without renewal, at
	// most. A crashed leader is replaced about 1.4 TTLs after it died (the
	// key expires within a TTL, and followers try every TTL/3 plus
	// jitter), so the TTL bounds failover; keeping it short costs one
	// small Redis command per worker every TTL/3.
	ElectorTTLDefault = 5 * time.Second
)

// elector holds one named leadership among the workers sharing a Redis
// prefix, after River's internal/leadership: the lease is a key set only if
// absent, with a TTL (P:leader:<name> = holder id). Followers try to take it
// every TTL/3 with jitter; the leader renews it at the same pace through a
// script that extends the key only while it still holds our id, and steps
// down when it has not renewed within TTL minus a margin (it can no longer
// trust that the key is ours). Stop resigns, deleting the key only if ours,
// so a successor takes over at once rather than after the TTL.
//
// onChange is called from the elector's goroutine with every change, in
// order; it must not block for long.
type elector struct {
	startstop.BaseStartStop
	rdb      *rdb
	name     string
	holder   string
	ttl      time.Duration
	log      logrus.FieldLogger
	onChange func(leader bool)

	mu     sync.Mutex
	leader bool // only the elector goroutine writes it
}

// isLeader reports whether this elector holds the leadership now.
func (e *elector) isLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

func (e *elector) set(leader bool) {
	e.mu.Lock()
	changed := e.leader != leader
	e.leader = leader
	e.mu.Unlock()
	if changed {
		e.log.WithField("leader", leader).Info("leadership changed")
		e.onChange(leader)
	}
}

// Start launches the election loop.
func (e *elector) Start(ctx context.Context) {
	ctx, shouldStart, stopped := e.StartInit(ctx)
	if !shouldStart {
		return
	}
	go func() {
		defer stopped()
		interval := e.ttl / 3
		// trustUntil is when a leader must step down if it could not renew.
		var trustUntil time.Time
		for {
			now := time.Now()
			if e.isLeader() {
				ok, err := e.rdb.reelect(ctx, e.name, e.holder, e.ttl)
				switch {
				case err == nil && ok:
					trustUntil = now.Add(e.ttl - interval)
				case err == nil:
					e.set(false) // someone else holds it
				case time.Now().After(trustUntil):
					e.log.WithError(err).Warn("cannot renew leadership; stepping down")
					e.set(false)
				}
			} else {
				ok, err := e.rdb.elect(ctx, e.name, e.holder, e.ttl)
				if err == nil && ok {
					trustUntil = now.Add(e.ttl - interval)
					e.set(true)
				} else if err != nil && ctx.Err() == nil {
					e.log.WithError(err).Debug("elect")
				}
			}
			wait := interval
			if !e.isLeader() {
				// Jitter spreads followers' attempts.
				wait += time.Duration(rand.Int64N(int64(interval)/4 + 1))
			}
			select {
			case <-ctx.Done():
				if e.isLeader() {
					e.set(false)
					rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					if err := e.rdb.resign(rctx, e.name, e.holder); err != nil {
						e.log.WithError(err).Warn("resign leadership; it expires on its own")
					}
					cancel()
				}
				return
			case <-time.After(wait):
			}
		}
	}()
}
