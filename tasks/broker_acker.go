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
// The task's slot is already free (process frees it when the task
// returns); the message's hold is freed only once its ack is written (or
// given up after settleTimeout, the message staying in the processing
// list for the reaper or the next deregister), so the processing list
// never holds more messages than the consumer's hold capacity.
type acker struct {
	c   *consumerLoop
	max int // most acks per call: the hold capacity

	mu      sync.Mutex
	pending []trdb.Ack
	wake    chan struct{} // signalled when pending grows; capacity 1
	closed  bool
	done    chan struct{} // closed when run has written the last acks
}

func newAcker(c *consumerLoop, max int) *acker {
	return &acker{c: c, max: max, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// add queues the ack of msg (runID "" when not counted), with its task's
// terminal state when result is not nil (written in the ack's round trip).
// It does not wait for the write.
func (a *acker) add(msg, runID string, result *trdb.TaskResult) {
	a.mu.Lock()
	a.pending = append(a.pending, trdb.Ack{Body: msg, RunID: runID, Result: result})
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// close writes the acks queued so far and returns once they are written.
// No add may follow.
func (a *acker) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
	<-a.done
}

// run writes queued acks until close.
func (a *acker) run(ctx context.Context) {
	defer close(a.done)
	for range a.wake {
		for {
			a.mu.Lock()
			n := min(len(a.pending), a.max)
			batch := append([]trdb.Ack(nil), a.pending[:n]...)
			a.pending = a.pending[n:]
			closed := a.closed
			a.mu.Unlock()
			if n == 0 {
				if closed {
					return
				}
				break
			}
			a.flush(ctx, batch)
		}
	}
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
