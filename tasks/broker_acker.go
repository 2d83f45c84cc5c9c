package tasks

import (
	"context"
	"errors"
	"sync"

	trdb "github.com/orcheo/orcheo/tasks/rdb"
)

// acker writes the acks of a consumer's settled messages in batches (as
// River's job completer does for completions): an ack waits while the
// previous write is in flight and goes with every other ack that came
// meanwhile in the next script call, so under load one call acks many
// messages and at low load an ack is written at once, without a delay.
// The write is made by the goroutine that settles a message and finds no
// write in flight (leader-based group commit, off the task's slot): it
// writes until nothing is pending, so an ack alone costs no hand-off to
// another goroutine.
// The task's slot is already free (process frees it when the task
// returns); the message's hold is freed only once its ack is written (or
// given up after settleTimeout, the message staying in the processing
// list for the reaper or the next deregister), so the processing list
// never holds more messages than the consumer's hold capacity.
type acker struct {
	ctx context.Context
	c   *consumerLoop
	max int // most acks per call: the hold capacity

	mu      sync.Mutex
	pending []trdb.Ack
	busy    bool // a goroutine is writing pending
}

func newAcker(ctx context.Context, c *consumerLoop, max int) *acker {
	return &acker{ctx: ctx, c: c, max: max}
}

// add queues the ack of msg (runID "" when not counted), with its task's
// terminal state when result is not nil (written in the ack's round trip),
// and writes what is pending unless another goroutine is writing it.
func (a *acker) add(msg, runID string, result *trdb.TaskResult) {
	a.mu.Lock()
	a.pending = append(a.pending, trdb.Ack{Body: msg, RunID: runID, Result: result})
	a.mu.Unlock()
	a.lead()
}

// close writes the acks queued so far. No add may follow, nor be running:
// the consumer calls it once its tasks have returned.
func (a *acker) close() { a.lead() }

// lead writes pending acks until none is left, unless a write is in
// flight (its writer then writes these too).
func (a *acker) lead() {
	a.mu.Lock()
	if a.busy {
		a.mu.Unlock()
		return
	}
	a.busy = true
	for len(a.pending) > 0 {
		n := min(len(a.pending), a.max)
		batch := append([]trdb.Ack(nil), a.pending[:n]...)
		a.pending = a.pending[n:]
		a.mu.Unlock()
		a.flush(a.ctx, batch)
		a.mu.Lock()
	}
	a.busy = false
	a.mu.Unlock()
}

// flush writes batch in one script call, retrying through a Redis outage
// for up to settleTimeout, then frees the batch's holds.
func (a *acker) flush(ctx context.Context, batch []trdb.Ack) {
	c := a.c
	c.retryFor(ctx, settleTimeout, "ack", func() error {
		_, err := c.b.rdb.Ack(ctx, c.queue, c.id, batch...)
		if errors.Is(err, trdb.ErrResultsNotWritten) {
			// Acked: acking again could remove another copy of a message.
			c.log.WithError(err).Warn("result backend: task states not kept")
			return nil
		}
		return err
	})
	for _, ack := range batch {
		c.track(ack.Body, -1)
	}
	c.unhold(len(batch))
}
