package tasks

import (
	"context"
	"errors"
	"sync"
	"time"

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
// and waits; its one goroutine claims every id waiting in one ClaimRuns,
// and while that call is in flight the next ids queue up for the next one.
// There is no timer: a lone claim goes out at once, so batching costs no
// latency at low load, and under load one round trip and one commit serve
// all the slots that asked meanwhile (up to claimBatchMax).
type claimer struct {
	startstop.BaseStartStop
	runs     orcheo.RunService
	workerID string
	lease    time.Duration

	wake chan struct{} // capacity 1: there are ids waiting
	// claimed, if set, hears of every batch once its ClaimRuns returned
	// (the worker's health and pickup metrics); it must be quick.
	claimed func(claims []orcheo.RunClaim, err error, at time.Time)

	mu      sync.Mutex
	open    bool            // guarded by mu: claims are taken
	waiting []*claimRequest // guarded by mu
}

// claimRequest is one waiting claim; done receives its outcome once.
type claimRequest struct {
	id   string
	done chan orcheo.RunClaim
}

// newClaimer returns an unstarted claimer; a batch's error is logged by
// each waiter (executeRun), not here.
func newClaimer(runs orcheo.RunService, workerID string, lease time.Duration) *claimer {
	return &claimer{runs: runs, workerID: workerID, lease: lease, wake: make(chan struct{}, 1)}
}

// Start launches the claiming goroutine. Claims made before Start or after
// Stop fail with errClaimerStopped.
func (c *claimer) Start(ctx context.Context) {
	ctx, shouldStart, stopped := c.StartInit(ctx)
	if !shouldStart {
		return
	}
	c.mu.Lock()
	c.open = true
	c.mu.Unlock()
	go func() {
		defer stopped()
		batchLoop(ctx, c.wake, func() bool { return c.flush(ctx) }, func() {
			c.mu.Lock()
			c.open = false
			rest := c.waiting
			c.waiting = nil
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
func (c *claimer) claim(id string) (*orcheo.Run, error) {
	req := &claimRequest{id: id, done: make(chan orcheo.RunClaim, 1)}
	c.mu.Lock()
	if !c.open {
		c.mu.Unlock()
		return nil, errClaimerStopped
	}
	c.waiting = append(c.waiting, req)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // already woken
	}
	res := <-req.done
	return res.Run, res.Err
}

// flush claims up to claimBatchMax waiting ids in one ClaimRuns and reports
// whether there were any.
func (c *claimer) flush(ctx context.Context) bool {
	c.mu.Lock()
	n := min(len(c.waiting), claimBatchMax)
	batch := make([]*claimRequest, n)
	copy(batch, c.waiting)
	c.waiting = append(c.waiting[:0], c.waiting[n:]...)
	c.mu.Unlock()
	if n == 0 {
		return false
	}
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
	return true
}
