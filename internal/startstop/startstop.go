// Package startstop is the start/stop base shared by background services
// (the maintenance services, heartbeat, claimer, completer, elector and beat
// scheduler), after
// River's rivershared/startstop.
//
// A service embeds BaseStartStop and writes its Start as:
//
//	func (s *Service) Start(ctx context.Context) {
//		ctx, shouldStart, stopped := s.StartInit(ctx)
//		if !shouldStart {
//			return
//		}
//		go func() {
//			defer stopped()
//			// loop until ctx is done
//		}()
//	}
//
// Stop, inherited from the base, cancels that context and waits for the
// goroutine to call stopped.
package startstop

import (
	"context"
	"sync"
)

// Service is a background service with an owned goroutine.
type Service interface {
	// Start launches the service's goroutine. Starting a started service
	// does nothing.
	Start(ctx context.Context)
	// Stop cancels the goroutine and waits for it to return. Stopping a
	// service that never started, or stopping twice, does nothing.
	Stop()
}

// BaseStartStop tracks whether a service runs. The zero value is ready to
// use; it is safe for concurrent use.
type BaseStartStop struct {
	mu      sync.Mutex
	cancel  context.CancelFunc
	stopped chan struct{} // closed by the service goroutine when it returns
}

// StartInit prepares a start. If the service already runs (or is being
// stopped), it returns shouldStart=false and the caller must return at once.
// Otherwise it returns a context cancelled by Stop (or by the parent ctx) and
// a stopped function that the service goroutine must call exactly once when
// it returns; a caller that gives up before launching its goroutine must
// call stopped itself.
func (s *BaseStartStop) StartInit(ctx context.Context) (_ context.Context, shouldStart bool, stopped func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped != nil {
		return ctx, false, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan struct{})
	s.cancel, s.stopped = cancel, ch
	var once sync.Once
	return ctx, true, func() { once.Do(func() { close(ch) }) }
}

// Started reports whether the service runs: started and not yet stopped.
func (s *BaseStartStop) Started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped != nil
}

// Stop cancels the service's context and waits until its goroutine has
// called stopped. It returns at once if the service never started or has
// stopped; concurrent calls all wait for the same stop. After Stop returns
// the service may be started again.
func (s *BaseStartStop) Stop() {
	s.mu.Lock()
	cancel, stopped := s.cancel, s.stopped
	s.mu.Unlock()
	if stopped == nil {
		return
	}
	cancel()
	<-stopped
	s.mu.Lock()
	if s.stopped == stopped {
		s.cancel, s.stopped = nil, nil
	}
	s.mu.Unlock()
}
