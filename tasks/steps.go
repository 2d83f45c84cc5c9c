package tasks

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// StepFlushInterval is how often a running run's changed steps are saved.
// A run that ends sooner saves no step on the way: CompleteRun stores them
// all in its one statement, so fast runs cost no extra writes, and a slow
// run shows its progress within this interval.
const StepFlushInterval = 250 * time.Millisecond

// stepWriter is the orcheo.StepRecorder of one run attempt. RecordStep
// only keeps the latest state of each step in memory; one goroutine saves
// what changed every StepFlushInterval, one SaveRunStep per changed step,
// so a run of N nodes costs at most about 2N small writes (start and end
// of each step) and usually fewer (a step that starts and ends between two
// flushes is written once).
type stepWriter struct {
	runs     orcheo.RunService
	log      logrus.FieldLogger
	interval time.Duration

	mu      sync.Mutex
	pending map[int]*orcheo.RunStep // by seq; guarded by mu
	stopped bool                    // guarded by mu; set by the first save that lost the claim

	stop chan struct{}
	done chan struct{}
}

// newStepWriter starts a writer; the caller must call close.
func newStepWriter(runs orcheo.RunService, log logrus.FieldLogger, interval time.Duration) *stepWriter {
	w := &stepWriter{runs: runs, log: log, interval: interval, pending: map[int]*orcheo.RunStep{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// RecordStep implements orcheo.StepRecorder. What no store can keep is
// replaced first (storableStep), so a save never fails on the step itself.
func (w *stepWriter) RecordStep(_ context.Context, step *orcheo.RunStep) {
	cp := *storableStep(step)
	w.mu.Lock()
	if !w.stopped {
		w.pending[cp.Seq] = &cp
	}
	w.mu.Unlock()
}

// close stops the writer and waits for a save in flight, so that no step
// write races the CompleteRun that follows. Steps not yet saved are
// dropped: the completion stores every step.
func (w *stepWriter) close() {
	close(w.stop)
	<-w.done
}

func (w *stepWriter) loop() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.flush()
		}
	}
}

// flush saves the steps that changed since the last flush, in seq order.
// A save that fails is not retried except through a later change or the
// completion; one that finds the run no longer running this attempt stops
// the writer.
func (w *stepWriter) flush() {
	w.mu.Lock()
	batch := w.pending
	w.pending = map[int]*orcheo.RunStep{}
	w.mu.Unlock()
	for _, seq := range slices.Sorted(maps.Keys(batch)) {
		st := batch[seq]
		select {
		case <-w.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := w.runs.SaveRunStep(ctx, st)
		cancel()
		switch orcheo.ErrorCode(err) {
		case "":
		case orcheo.EINVALID:
			// Refused for good (a limit storableStep does not know): drop
			// it; the completion stores the step again or fails the run.
			w.log.WithField("reason", orcheo.ErrorMessage(err)).WithField("seq", st.Seq).Warn("step not saved: refused by the store")
		case orcheo.ECONFLICT, orcheo.ENOTFOUND:
			w.log.WithField("reason", orcheo.ErrorMessage(err)).Debug("step not saved: run no longer running this attempt")
			w.mu.Lock()
			w.stopped, w.pending = true, map[int]*orcheo.RunStep{}
			w.mu.Unlock()
			return
		default:
			w.log.WithError(err).WithField("seq", st.Seq).Warn("save step")
		}
	}
}
