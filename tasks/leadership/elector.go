// Package leadership elects one holder of a named leadership among the
// processes that share a lease store (Redis), after River's
// internal/leadership. The worker's rescuer and the cron beat each run only
// on the leader of their own leadership ("rescuer", "beat").
//
// The lease is one key with a TTL holding the leader's id. Followers try to
// take it every RenewInterval plus jitter; the leader extends it at the same
// pace, only while it still holds its id, and steps down when it could not
// renew for TTL minus one RenewInterval, since past that it can no longer
// trust that the key is still its own. Stop resigns (deleting the key only
// if ours) so a successor takes over at once instead of after the TTL.
//
// A resignation is also announced (ResignNotifier), so a follower takes
// over within milliseconds of a leader's Stop rather than at its next try.
//
// A crashed leader (no resign) is replaced once its key expires, at most a
// TTL after its last renewal, plus one follower try: within about 1.42 TTL
// of the crash at the defaults (TTL/3 tries with TTL/12 jitter).
package leadership

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
	// TTLDefault is how long a leadership lasts without renewal. It bounds
	// failover after a crash (about 1.42 TTL); a short one costs one small
	// Redis command per process every TTL/3.
	TTLDefault = 5 * time.Second
	// resignTimeout bounds the resignation at Stop: past it the lease
	// expires on its own.
	resignTimeout = 2 * time.Second
)

// Store keeps the leases of named leaderships. rdb.Leaders implements it
// on Redis. Implementations must be safe for concurrent use.
type Store interface {
	// Elect makes holder the leader of name for ttl if no one holds it,
	// and reports whether holder leads now.
	Elect(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// Reelect extends holder's leadership of name to ttl from now if holder
	// still holds it; false means someone else (or no one) does.
	Reelect(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// Resign ends holder's leadership of name if holder still holds it,
	// and does nothing otherwise.
	Resign(ctx context.Context, name, holder string) error
}

// ResignNotifier is a Store that also announces resignations (rdb.Leaders
// does, on Redis pub/sub). An elector whose Store is one listens while it
// runs, and a follower tries at once (after 0-50 ms of jitter) when
// another holder resigns, instead of at its next tick.
type ResignNotifier interface {
	// SubscribeResigned calls fn, from a goroutine of its own, with the
	// holder each time a holder of name resigns, until stop is called.
	SubscribeResigned(name string, fn func(holder string)) (stop func())
}

// Config configures an Elector.
type Config struct {
	// Store keeps the lease (required): the process's one Redis client.
	Store Store
	// Name of the leadership (required), e.g. "rescuer" or "beat": the
	// lease key is <prefix>:leader:<name>.
	Name string
	// Holder identifies this process (required), unique across restarts
	// (host, pid and a random part), so a restarted process never mistakes
	// its predecessor's lease for its own.
	Holder string
	// TTL is how long a leadership lasts without renewal; default
	// TTLDefault.
	TTL time.Duration
	// RenewInterval is how often the leader renews and followers try to
	// take the lease; default TTL/3. It must be below TTL/2 so that a
	// leader gets at least two tries before its lease runs out.
	RenewInterval time.Duration
	// Jitter is the most a follower adds at random to each wait, so that
	// followers started together do not try in step; default
	// RenewInterval/4.
	Jitter time.Duration
	// Logger; default logrus's standard logger.
	Logger logrus.FieldLogger
}

// Elector runs one process's candidacy for one leadership. Start it once;
// IsLeader and Listen are safe for concurrent use.
type Elector struct {
	startstop.BaseStartStop
	cfg Config
	log logrus.FieldLogger

	mu     sync.Mutex
	leader bool // written only by the elector's goroutine, under mu
	subs   []*Subscription
}

// NewElector returns an elector for cfg with defaults filled in. It panics
// on a missing Store, Name or Holder, or a RenewInterval not below TTL/2:
// those are wiring bugs.
func NewElector(cfg Config) *Elector {
	if cfg.Store == nil || cfg.Name == "" || cfg.Holder == "" {
		panic("leadership: Config.Store, Name and Holder are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = TTLDefault
	}
	if cfg.RenewInterval <= 0 {
		cfg.RenewInterval = cfg.TTL / 3
	}
	if cfg.RenewInterval*2 >= cfg.TTL {
		panic("leadership: Config.RenewInterval must be below TTL/2")
	}
	if cfg.Jitter <= 0 {
		cfg.Jitter = cfg.RenewInterval / 4
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.StandardLogger()
	}
	log := cfg.Logger.WithFields(logrus.Fields{"leadership": cfg.Name, "holder": cfg.Holder})
	return &Elector{cfg: cfg, log: log}
}

// Config returns the elector's configuration with defaults filled in.
func (e *Elector) Config() Config { return e.cfg }

// IsLeader reports whether this process holds the leadership now.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// set records a change of role and tells every subscriber, in order.
func (e *Elector) set(leader bool) {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leader == leader {
		return
	}
	e.leader = leader
	e.log.WithField("leader", leader).Info("leadership changed")
	for _, s := range e.subs {
		s.push(Notification{IsLeader: leader, Time: now})
	}
}

// Start launches the election loop on a goroutine owned by the elector.
// Stop ends it: a leader steps down (subscribers are told) and resigns.
func (e *Elector) Start(ctx context.Context) {
	ctx, shouldStart, stopped := e.StartInit(ctx)
	if !shouldStart {
		return
	}
	// resigned wakes a follower when another holder resigns; buffered 1,
	// so announcements coalesce and the notifier never blocks.
	resigned := make(chan struct{}, 1)
	unsubscribe := func() {}
	if n, ok := e.cfg.Store.(ResignNotifier); ok {
		unsubscribe = n.SubscribeResigned(e.cfg.Name, func(holder string) {
			if holder == e.cfg.Holder {
				return
			}
			select {
			case resigned <- struct{}{}:
			default:
			}
		})
	}
	go func() {
		defer stopped()
		defer unsubscribe()
		e.run(ctx, resigned)
	}()
}

func (e *Elector) run(ctx context.Context, resigned <-chan struct{}) {
	interval := e.cfg.RenewInterval
	// lastOK is when the last successful elect or renew began: the lease
	// is ours until at least lastOK+TTL.
	var lastOK time.Time
	// interrupted is set when Stop cut an election short: Redis may have
	// made us leader without our hearing of it.
	interrupted := false
	for {
		began := time.Now()
		if e.IsLeader() {
			ok, err := e.try(ctx, e.cfg.Store.Reelect)
			switch {
			case ctx.Err() != nil:
			case err == nil && ok:
				lastOK = began
			case err == nil:
				e.log.Warn("leadership taken over; stepping down")
				e.set(false)
			case time.Since(lastOK) >= e.cfg.TTL-interval:
				e.log.WithError(err).Warn("cannot renew leadership; stepping down")
				e.set(false)
			default:
				e.log.WithError(err).Debug("renew leadership; retrying")
			}
		} else {
			ok, err := e.try(ctx, e.cfg.Store.Elect)
			switch {
			case ctx.Err() != nil:
				interrupted = err != nil || ok
			case err == nil && ok:
				lastOK = began
				e.set(true)
			case err != nil:
				e.log.WithError(err).Debug("elect")
			}
		}
		wait := interval - time.Since(began)
		if !e.IsLeader() {
			wait += time.Duration(rand.Int64N(int64(e.cfg.Jitter) + 1))
		}
		if !e.sleep(ctx, max(wait, 0), resigned) {
			e.resign(interrupted)
			return
		}
	}
}

// sleep waits d, or less when a follower hears of a resignation: then it
// waits 0-50 ms more at random, so followers do not all try at once. It
// returns false once ctx is done.
func (e *Elector) sleep(ctx context.Context, d time.Duration, resigned <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-resigned:
			if e.IsLeader() {
				continue // a stale announcement; ours renews on its tick
			}
			t.Reset(time.Duration(rand.Int64N(int64(50*time.Millisecond) + 1)))
		}
	}
}

// try runs one elect or renew, bounded by half a RenewInterval: a call
// that hangs must not keep a leader that cannot renew in office past its
// trust window.
func (e *Elector) try(ctx context.Context, op func(context.Context, string, string, time.Duration) (bool, error)) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RenewInterval/2)
	defer cancel()
	return op(ctx, e.cfg.Name, e.cfg.Holder, e.cfg.TTL)
}

// resign steps down and deletes the lease if it is still ours, on a fresh
// context (the elector's is cancelled): a successor then takes over at its
// next try instead of after the TTL. Subscribers are told before the lease
// is deleted, so a caller that stops its leader-only work on that news
// first (RunWhileLeader's stop) never overlaps with a successor's. A
// follower resigns too when Stop interrupted its election (maybeLeader),
// which Redis may have granted: deleting only a lease that is ours, that
// costs nothing when it was not.
func (e *Elector) resign(maybeLeader bool) {
	if !e.IsLeader() && !maybeLeader {
		return
	}
	e.set(false)
	ctx, cancel := context.WithTimeout(context.Background(), resignTimeout)
	defer cancel()
	if err := e.cfg.Store.Resign(ctx, e.cfg.Name, e.cfg.Holder); err != nil {
		e.log.WithError(err).Warn("resign leadership; it expires on its own")
	}
}
