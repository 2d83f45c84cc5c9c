package startstop

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// loopService counts how many goroutines it launched.
type loopService struct {
	BaseStartStop
	launched atomic.Int32
	running  atomic.Int32
}

func (s *loopService) Start(ctx context.Context) {
	ctx, shouldStart, stopped := s.StartInit(ctx)
	if !shouldStart {
		return
	}
	s.launched.Add(1)
	s.running.Add(1)
	go func() {
		defer stopped()
		defer s.running.Add(-1)
		<-ctx.Done()
	}()
}

var _ Service = (*loopService)(nil)

func TestBaseStartStop(t *testing.T) {
	t.Parallel()

	t.Run("StopWithoutStart", func(t *testing.T) {
		t.Parallel()
		var s loopService
		s.Stop()
		s.Stop()
		if s.Started() {
			t.Fatal("Started() = true for a service never started")
		}
	})

	t.Run("StartTwiceLaunchesOnce", func(t *testing.T) {
		t.Parallel()
		var s loopService
		s.Start(context.Background())
		s.Start(context.Background())
		if got := s.launched.Load(); got != 1 {
			t.Fatalf("launched %d goroutines, want 1", got)
		}
		s.Stop()
		s.Stop()
		if got := s.running.Load(); got != 0 {
			t.Fatalf("%d goroutines still running after Stop", got)
		}
	})

	t.Run("RestartAfterStop", func(t *testing.T) {
		t.Parallel()
		var s loopService
		s.Start(context.Background())
		s.Stop()
		s.Start(context.Background())
		if !s.Started() {
			t.Fatal("service did not start again after Stop")
		}
		s.Stop()
		if got := s.launched.Load(); got != 2 {
			t.Fatalf("launched %d goroutines, want 2", got)
		}
	})

	t.Run("ParentCancelEndsGoroutine", func(t *testing.T) {
		t.Parallel()
		var s loopService
		ctx, cancel := context.WithCancel(context.Background())
		s.Start(ctx)
		cancel()
		s.Stop() // must not hang: the goroutine has returned or returns now
		if got := s.running.Load(); got != 0 {
			t.Fatalf("%d goroutines still running", got)
		}
	})

	t.Run("Stress", func(t *testing.T) {
		t.Parallel()
		var s loopService
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(2)
			go func() { defer wg.Done(); s.Start(context.Background()) }()
			go func() { defer wg.Done(); s.Stop() }()
		}
		wg.Wait()
		s.Stop()
		if got := s.running.Load(); got != 0 {
			t.Fatalf("%d goroutines still running after final Stop", got)
		}
	})
}
