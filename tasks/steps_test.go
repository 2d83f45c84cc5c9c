package tasks

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/mock"
)

// savedSteps records SaveRunStep calls; the store is not what these tests
// are about (storetest covers SaveRunStep itself).
type savedSteps struct {
	mu    sync.Mutex
	steps []orcheo.RunStep
}

func (s *savedSteps) save(_ context.Context, st *orcheo.RunStep) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, *st)
	return nil
}

func (s *savedSteps) all() []orcheo.RunStep {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.steps)
}

func step(seq int, status orcheo.StepStatus) *orcheo.RunStep {
	return &orcheo.RunStep{RunID: "r1", Attempt: 1, Seq: seq, Node: "n", Status: status}
}

func TestStepWriter_BatchesLatestStatePerStep(t *testing.T) {
	t.Parallel()
	saved := &savedSteps{}
	// The ticker never fires within the test; flush is called directly.
	w := newStepWriter(&mock.RunService{SaveRunStepFn: saved.save}, testLogger(), time.Hour)
	defer w.close()
	ctx := context.Background()

	w.RecordStep(ctx, step(2, orcheo.StepRunning))
	w.RecordStep(ctx, step(1, orcheo.StepRunning))
	st := step(1, orcheo.StepSucceeded)
	w.RecordStep(ctx, st)
	st.Status = orcheo.StepFailed // RecordStep keeps a copy
	w.flush()
	got := saved.all()
	if len(got) != 2 || got[0].Seq != 1 || got[0].Status != orcheo.StepSucceeded ||
		got[1].Seq != 2 || got[1].Status != orcheo.StepRunning {
		t.Fatalf("saved %+v, want seq 1 succeeded then seq 2 running, once each", got)
	}

	w.flush() // nothing changed: no write
	if n := len(saved.all()); n != 2 {
		t.Fatalf("an idle flush saved %d more steps", n-2)
	}
	w.RecordStep(ctx, step(2, orcheo.StepSucceeded))
	w.flush()
	if got := saved.all(); len(got) != 3 || got[2].Seq != 2 || got[2].Status != orcheo.StepSucceeded {
		t.Fatalf("saved %+v, want only seq 2's change third", got)
	}
}

func TestStepWriter_FlushesOnItsInterval(t *testing.T) {
	t.Parallel()
	saved := &savedSteps{}
	w := newStepWriter(&mock.RunService{SaveRunStepFn: saved.save}, testLogger(), 10*time.Millisecond)
	defer w.close()
	w.RecordStep(context.Background(), step(1, orcheo.StepRunning))
	waitFor(t, "the step to be saved", func() bool { return len(saved.all()) == 1 })
}

// TestStepWriter_CloseWaitsForSaveInFlight: CompleteRun follows close, so a
// save still running would race it; close waits for it and saves nothing
// more (the completion stores every step).
func TestStepWriter_CloseWaitsForSaveInFlight(t *testing.T) {
	t.Parallel()
	started, release := make(chan int, 2), make(chan struct{})
	saved := &savedSteps{}
	runs := &mock.RunService{SaveRunStepFn: func(ctx context.Context, st *orcheo.RunStep) error {
		started <- st.Seq
		<-release
		return saved.save(ctx, st)
	}}
	w := newStepWriter(runs, testLogger(), 10*time.Millisecond)
	w.RecordStep(context.Background(), step(1, orcheo.StepRunning))
	w.RecordStep(context.Background(), step(2, orcheo.StepRunning))
	if seq := <-started; seq != 1 {
		t.Fatalf("first save was seq %d, want 1", seq)
	}
	closed := make(chan struct{})
	go func() {
		w.close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("close returned while a save was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	if got := saved.all(); len(got) != 1 || got[0].Seq != 1 {
		t.Fatalf("saved %+v, want only the save in flight (seq 1)", got)
	}
}

func TestStepWriter_StopsWhenRunNoLongerRunning(t *testing.T) {
	t.Parallel()
	calls := 0
	var mu sync.Mutex
	runs := &mock.RunService{SaveRunStepFn: func(context.Context, *orcheo.RunStep) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return orcheo.Errorf(orcheo.ECONFLICT, "run r1 is not running attempt 1")
	}}
	w := newStepWriter(runs, testLogger(), time.Hour)
	defer w.close()
	w.RecordStep(context.Background(), step(1, orcheo.StepRunning))
	w.RecordStep(context.Background(), step(2, orcheo.StepRunning))
	w.flush()
	w.RecordStep(context.Background(), step(3, orcheo.StepRunning))
	w.flush()
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Fatalf("SaveRunStep called %d times, want 1: the writer stops at the first conflict", calls)
	}
}
