package leadership

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/orcheo/orcheo/internal/startstop"
)

// Notification is one change of role.
type Notification struct {
	IsLeader bool
	Time     time.Time
}

// Subscription delivers an elector's changes of role, in order, starting
// with the role at the time of Listen. Each subscription queues its own
// notifications and feeds them to C from a goroutine of its own, so a slow
// reader (a service that takes seconds to stop) never delays the elector's
// renewals, and no change is dropped. Changes are rare (at most one per
// RenewInterval), so the queue stays short.
type Subscription struct {
	e    *Elector
	ch   chan Notification
	wake chan struct{} // buffered 1: pushes coalesce
	done chan struct{} // closed by Unlisten
	once sync.Once

	mu    sync.Mutex
	queue []Notification
}

// Listen subscribes to the elector's changes of role. The caller must call
// Unlisten when done, which closes C.
func (e *Elector) Listen() *Subscription {
	s := &Subscription{e: e, ch: make(chan Notification), wake: make(chan struct{}, 1), done: make(chan struct{})}
	e.mu.Lock()
	s.push(Notification{IsLeader: e.leader, Time: time.Now()})
	e.subs = append(e.subs, s)
	e.mu.Unlock()
	go s.feed()
	return s
}

// C delivers the notifications; it is closed by Unlisten.
func (s *Subscription) C() <-chan Notification { return s.ch }

// Unlisten ends the subscription and closes C; notifications not yet read
// are dropped. Calling it twice is fine.
func (s *Subscription) Unlisten() {
	s.once.Do(func() {
		s.e.mu.Lock()
		s.e.subs = slices.DeleteFunc(s.e.subs, func(x *Subscription) bool { return x == s })
		s.e.mu.Unlock()
		close(s.done)
	})
}

// push queues n without blocking.
func (s *Subscription) push(n Notification) {
	s.mu.Lock()
	s.queue = append(s.queue, n)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// feed moves queued notifications to C until Unlisten.
func (s *Subscription) feed() {
	defer close(s.ch)
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			n := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			select {
			case s.ch <- n:
			case <-s.done:
				return
			}
		}
	}
}

// RunWhileLeader starts svc each time e gains the leadership and stops it
// each time e loses it, in order, on a goroutine of its own (svc.Stop may
// wait for a pass in flight; the elector goes on renewing meanwhile). The
// returned function unlistens, stops svc and waits for both. Call it before
// e.Stop: svc has then stopped before the lease is resigned, so it never
// runs beside a successor's. This is how leader-only services (the
// rescuer) are run, after River's queue_maintainer_leader.go.
func RunWhileLeader(e *Elector, svc startstop.Service) (stop func()) {
	sub := e.Listen()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := range sub.C() {
			if n.IsLeader {
				// svc's own context: only Stop ends it.
				svc.Start(context.Background())
			} else {
				svc.Stop()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			sub.Unlisten()
			<-done
			svc.Stop()
		})
	}
}
