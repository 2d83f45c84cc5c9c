package tasks

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/sirupsen/logrus"
)

// errLeaseLost is the cancel cause of a run whose lease this worker no
// longer holds (the rescuer gave it to another attempt, or it ended).
var errLeaseLost = errors.New("lease lost")

// leaseTracker is the set of runs a worker executes, for the heartbeat.
// Safe for concurrent use; the zero value is ready.
type leaseTracker struct {
	mu   sync.Mutex
	runs map[string]context.CancelCauseFunc // run id → cancels its execution
	// active describes each tracked run for the worker registry
	// (registry.go): workflow, attempt and since when.
	active map[string]orcheo.ActiveRun
}

// track adds run and returns the context to execute it in, cancelled if
// its lease is lost, and the function that removes it when it is done.
func (t *leaseTracker) track(ctx context.Context, run *orcheo.Run) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	t.mu.Lock()
	if t.runs == nil {
		t.runs = make(map[string]context.CancelCauseFunc)
		t.active = make(map[string]orcheo.ActiveRun)
	}
	t.runs[run.ID] = cancel
	t.active[run.ID] = orcheo.ActiveRun{RunID: run.ID, WorkflowID: run.WorkflowID, Queue: run.Queue,
		Attempt: run.Attempt, Since: time.Now().UTC()}
	t.mu.Unlock()
	return ctx, func() {
		t.mu.Lock()
		delete(t.runs, run.ID)
		delete(t.active, run.ID)
		t.mu.Unlock()
		cancel(nil)
	}
}

// ids returns the runs being executed.
func (t *leaseTracker) ids() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.runs))
	for id := range t.runs {
		out = append(out, id)
	}
	return out
}

// snapshot returns the tracked runs, oldest claim first.
func (t *leaseTracker) snapshot() []orcheo.ActiveRun {
	t.mu.Lock()
	out := make([]orcheo.ActiveRun, 0, len(t.active))
	for _, a := range t.active {
		out = append(out, a)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b orcheo.ActiveRun) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.RunID, b.RunID)
	})
	return out
}

// lose cancels the execution of run id, if it is still tracked.
func (t *leaseTracker) lose(id string) bool {
	t.mu.Lock()
	cancel, ok := t.runs[id]
	t.mu.Unlock()
	if ok {
		cancel(errLeaseLost)
	}
	return ok
}

// heartbeat renews the leases of a worker's runs every HeartbeatInterval
// and stops the runs whose lease was lost. A run is tracked from its claim
// until its completion is settled (committed, fenced or given up), not
// only while it executes, so a run whose result waits for the completer
// keeps its lease and is not rescued meanwhile. It runs from Worker.Start
// until after the worker's last completion is settled (the consumers wait
// for them), so leases stay valid through the drain.
type heartbeat struct {
	startstop.BaseStartStop
	w   *Worker
	log logrus.FieldLogger
}

// Start launches the heartbeat goroutine.
func (h *heartbeat) Start(ctx context.Context) {
	ctx, shouldStart, stopped := h.StartInit(ctx)
	if !shouldStart {
		return
	}
	go func() {
		defer stopped()
		ticker := time.NewTicker(h.w.cfg.HeartbeatInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			h.runOnce(ctx)
		}
	}()
}

// runOnce extends every tracked run's lease once. A database error is
// logged and retried at the next tick: the lease is long enough for a few
// misses.
func (h *heartbeat) runOnce(ctx context.Context) {
	ids := h.w.leases.ids()
	if len(ids) == 0 {
		return
	}
	until := time.Now().Add(h.w.cfg.LeaseDuration)
	held, err := h.w.Runs.HeartbeatRuns(ctx, h.w.ID, ids, until)
	if err != nil {
		if ctx.Err() == nil {
			h.log.WithError(err).WithField("runs", len(ids)).Warn("renew leases; retrying at the next heartbeat")
		}
		return
	}
	kept := make(map[string]bool, len(held))
	for _, id := range held {
		kept[id] = true
	}
	for _, id := range ids {
		if !kept[id] && h.w.leases.lose(id) {
			h.log.WithField("run_id", id).Warn("lease lost; stopping the run")
		}
	}
}

// handBack deals with a run whose execution was interrupted. On shutdown
// the run goes back to pending without using up an attempt (ReleaseRun) and
// its message back to the front of the queue, so another worker takes it
// at once. A run whose lease was lost is someone else's: nothing to do.
// mctx is machinery's task context, which carries the message.
func (w *Worker) handBack(mctx context.Context, run *orcheo.Run, log logrus.FieldLogger) {
	if w.runCtx.Err() == nil {
		log.Warn("run stopped: this worker lost its lease")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
	defer cancel()
	if _, err := w.Runs.ReleaseRun(ctx, run.ID, run.Attempt); err != nil {
		// The lease expires instead and the rescuer takes the run; the
		// message is acked, as a delivery would be skipped anyway.
		log.WithError(err).Warn("release run at shutdown; the rescuer takes it when its lease expires")
		return
	}
	if sig := mtasks.SignatureFromContext(mctx); sig != nil {
		w.handback.Store(sig, struct{}{})
	}
	w.stats.handedBack.Add(1)
	log.Info("run handed back at shutdown")
}
