package tasks

import (
	"context"
	"errors"
	"sync"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
)

const (
	// claimBatchMax caps how many waiting ids one ClaimRuns takes; the
	// rest wait for the next batch.
	claimBatchMax = 100
	// claimTimeout bounds one ClaimRuns, so a hung database call cannot
	// hold every later claim behind it.
	claimTimeout = 15 * time.Second
)

// errClaimerStopped is what a claim gets when the claimer is not running.
var errClaimerStopped = errors.New("claimer stopped")

// claimer is the worker's group-commit claim. executeRun hands it a run id
// and waits; every id waiting goes in one ClaimRuns, and while that call is
// in flight the next ids queue up for the next one. There is no timer: a
// lone claim goes out at once, so batching costs no latency at low load,
// and under load one round trip and one commit serve all the slots that
// asked meanwhile (up to claimBatchMax).
//
// The batch is written by whoever finds no batch in flight (leader-based
// group commit): usually the claiming slot itself, on its own goroutine,
// so a claim alone costs no hand-off to another goroutine and back; the
// claimer's goroutine only takes over what queued while a leader wrote.
//
// The broker's fetcher announces the runs of the messages it has just
// taken (expect), before their slots' goroutines reach executeRun, so the
// first of them to claim claims them all in one batch. A fetcher takes no
// more messages than it has free slots, so a run claimed this way has its
// slot already and never waits for one; if its task never asks for it
// (machinery failed around the task), the broker's forget hands the run
// back.
type claimer struct {
	startstop.BaseStartStop
	runs     orcheo.RunService
	workerID string
	lease    time.Duration

	wake chan struct{} // capacity 1: ids queued while a leader wrote
	// claimed, if set, hears of every batch once its ClaimRuns returned
	// (the worker's health and pickup metrics); it must be quick.
	claimed func(claims []orcheo.RunClaim, err error, at time.Time)

	mu       sync.Mutex
	ctx      context.Context                     // guarded by mu: Start's, for the batches
	open     bool                                // guarded by mu: claims are taken
	busy     bool                                // guarded by mu: a batch is being written
	waiting  []*claimRequest                     // guarded by mu
	expected map[*mtasks.Signature]*claimRequest // guarded by mu: announced, not yet asked for
}

// claimRequest is one waiting claim; done receives its outcome once.
type claimRequest struct {
	id   string
	done chan orcheo.RunClaim
	sent bool // guarded by the claimer's mu: in a batch
}

// newClaimer returns an unstarted claimer; a batch's error is logged by
// each waiter (executeRun), not here.
func newClaimer(runs orcheo.RunService, workerID string, lease time.Duration) *claimer {
	return &claimer{runs: runs, workerID: workerID, lease: lease, wake: make(chan struct{}, 1),
		expected: make(map[*mtasks.Signature]*claimRequest)}
}

// Start launches the claiming goroutine. Claims made before Start or after
// Stop fail with errClaimerStopped.
func (c *claimer) Start(ctx context.Context) {
	ctx, shouldStart, stopped := c.StartInit(ctx)
	if !shouldStart {
		return
	}
	c.mu.Lock()
	c.open, c.ctx = true, ctx
	c.mu.Unlock()
	go func() {
		defer stopped()
		batchLoop(ctx, c.wake, c.flush, func() {
			c.mu.Lock()
			c.open = false
			rest := c.waiting
			c.waiting = nil
			clear(c.expected)
			c.mu.Unlock()
			for _, req := range rest {
				req.done <- orcheo.RunClaim{ID: req.id, Err: errClaimerStopped}
			}
		})
	}()
}

// claim claims run id for this worker, as RunService.ClaimRun does, in the
// next batch. Safe for concurrent use; it returns once the batch holding id
// has committed or failed (then every id of the batch gets its error).
func (c *claimer) claim(id string) (*orcheo.Run, error) { return c.claimFor(nil, id) }

// claimFor is claim for the message sig (nil when not a broker's
// delivery): the claim expect queued for sig, if any, is this one.
func (c *claimer) claimFor(sig *mtasks.Signature, id string) (*orcheo.Run, error) {
	c.mu.Lock()
	if !c.open {
		c.mu.Unlock()
		return nil, errClaimerStopped
	}
	req := c.expected[sig]
	if req != nil && sig != nil && req.id == id {
		delete(c.expected, sig)
	} else {
		req = &claimRequest{id: id, done: make(chan orcheo.RunClaim, 1)}
		c.waiting = append(c.waiting, req)
	}
	sent := req.sent
	c.mu.Unlock()
	if !sent {
		// A claim a sibling already sent leads no batch: that would hold
		// this slot for a commit not its own.
		c.lead()
	}
	res := <-req.done
	return res.Run, res.Err
}

// expect queues the claim of run id for the message sig, just taken, to go
// in the next batch; claimFor(sig, id) then waits for it. It does not
// start a batch: the first claimFor does. Every expect must be followed by
// forget(sig) once sig's task has returned.
func (c *claimer) expect(sig *mtasks.Signature, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.open {
		return
	}
	req := &claimRequest{id: id, done: make(chan orcheo.RunClaim, 1)}
	c.waiting = append(c.waiting, req)
	c.expected[sig] = req
}

// forget drops what expect queued for sig if its task never claimed it
// (machinery failed before calling the task): a claim not yet sent is
// taken out of the queue; one already made is waited for and its run,
// claimed for no one, handed back (ReleaseRun), so it does not sit
// running until its lease expires.
func (c *claimer) forget(sig *mtasks.Signature) {
	c.mu.Lock()
	req := c.expected[sig]
	if req == nil {
		c.mu.Unlock()
		return
	}
	delete(c.expected, sig)
	if !req.sent {
		for i, w := range c.waiting {
			if w == req {
				c.waiting = append(c.waiting[:i], c.waiting[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return
	}
	ctx := c.ctx
	c.mu.Unlock()
	res := <-req.done
	if res.Run == nil {
		return
	}
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	defer cancel()
	_, _ = c.runs.ReleaseRun(callCtx, res.Run.ID, res.Run.Attempt) // else its lease expires and the rescuer acts
}

// lead writes one batch on the caller's goroutine if none is being
// written, then leaves what queued meanwhile to the claimer's goroutine.
func (c *claimer) lead() {
	if c.flush() {
		c.mu.Lock()
		more := len(c.waiting) > 0 && !c.busy
		c.mu.Unlock()
		if more {
			select {
			case c.wake <- struct{}{}:
			default: // already woken
			}
		}
	}
}

// flush claims up to claimBatchMax waiting ids in one ClaimRuns, unless a
// batch is being written (its writer flushes or wakes the goroutine
// after), and reports whether it wrote one.
func (c *claimer) flush() bool {
	c.mu.Lock()
	n := min(len(c.waiting), claimBatchMax)
	if n == 0 || c.busy || !c.open {
		c.mu.Unlock()
		return false
	}
	c.busy = true
	ctx := c.ctx
	batch := make([]*claimRequest, n)
	copy(batch, c.waiting)
	c.waiting = append(c.waiting[:0], c.waiting[n:]...)
	for _, req := range batch {
		req.sent = true
	}
	c.mu.Unlock()
	c.write(ctx, batch)
	c.mu.Lock()
	c.busy = false
	c.mu.Unlock()
	return true
}

// write makes batch's ClaimRuns and delivers each outcome.
func (c *claimer) write(ctx context.Context, batch []*claimRequest) {
	n := len(batch)
	ids := make([]string, n)
	for i, req := range batch {
		ids[i] = req.id
	}
	callCtx, cancel := context.WithTimeout(ctx, claimTimeout)
	claims, err := c.runs.ClaimRuns(callCtx, ids, c.workerID, time.Now().Add(c.lease))
	cancel()
	if err == nil && len(claims) != n {
		err = errors.New("claim runs: wrong number of results")
	}
	if c.claimed != nil {
		c.claimed(claims, err, time.Now())
	}
	for i, req := range batch {
		if err != nil {
			req.done <- orcheo.RunClaim{ID: req.id, Err: err}
		} else {
			req.done <- claims[i]
		}
	}
}
