package tasks

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/sirupsen/logrus"
)

const (
	// completeBatchMax caps how many completions one CompleteRuns writes.
	completeBatchMax = 100
	// completeBackoffMax caps the wait between tries of a batch that hit a
	// database error; the first wait is completeBackoffMin, doubling.
	completeBackoffMin = 100 * time.Millisecond
	completeBackoffMax = 5 * time.Second
)

// completer records the results of attempts, many in one CompleteRuns,
// after River's jobcompleter: executeRun hands it (run, attempt,
// completion) and returns, freeing its slot; the broker acks the message
// only once that completion has been settled (committed, fenced or given
// up), waiting on the channel submit returned. Its one
// goroutine writes every completion waiting in one batch; while that batch
// is in flight the next ones queue up. No timer: a lone completion goes out
// at once.
//
// A batch that hits a database error is tried again, with backoff, with
// whatever else arrived meanwhile; a completion is given up
// completeTimeout after it was handed in (a database restart must not lose
// a finished run; one that stays down leaves the run to lease expiry and
// the rescuer). A completion the store fences (ECONFLICT: the attempt lost
// its lease to a rescue) is a zombie's: logged and dropped, never retried.
// Stop writes what is still waiting before it returns.
type completer struct {
	startstop.BaseStartStop
	runs    orcheo.RunService
	timeout time.Duration // per completion, from hand-in

	wake chan struct{} // capacity 1: there are completions waiting

	mu      sync.Mutex
	open    bool          // guarded by mu: completions are taken
	busy    bool          // guarded by mu: a batch is being written
	waiting []*completion // guarded by mu

	backoff time.Duration // only the writer of a batch (busy) touches it
}

// completion is one attempt's result waiting to be written; done receives
// the run as stored, or nil, once.
type completion struct {
	item     orcheo.AttemptCompletion
	log      logrus.FieldLogger
	deadline time.Time
	refused  bool // item.Completion was replaced by unstorableCompletion
	alone    bool // write in a batch of its own (its batch's data was refused)
	done     chan *orcheo.Run
}

func newCompleter(runs orcheo.RunService, timeout time.Duration) *completer {
	return &completer{runs: runs, timeout: timeout, wake: make(chan struct{}, 1)}
}

// Start launches the writing goroutine. Stop cancels it, after which it
// writes what is waiting (retrying as before) and returns.
func (c *completer) Start(ctx context.Context) {
	ctx, shouldStart, stopped := c.StartInit(ctx)
	if !shouldStart {
		return
	}
	c.mu.Lock()
	c.open = true
	c.mu.Unlock()
	go func() {
		defer stopped()
		batchLoop(ctx, c.wake, c.flush, func() {
			c.mu.Lock()
			c.open = false
			c.mu.Unlock()
			for c.flush() {
			}
		})
	}()
}

// hand hands rc to the next batch like submit, but starts no write: the
// returned wait writes the batch on its caller's goroutine if no batch is
// being written (leader-based group commit: a completion alone costs no
// hand-off to the completer's goroutine and back), then returns what
// complete would. The caller must call wait.
func (c *completer) hand(run *orcheo.Run, rc orcheo.RunCompletion, log logrus.FieldLogger) (wait func() *orcheo.Run) {
	done := c.queue(run, rc, log)
	return func() *orcheo.Run {
		c.lead()
		return <-done
	}
}

// lead writes batches on the caller's goroutine while no other batch is
// being written, and leaves what queued meanwhile to the completer's
// goroutine, or writes it too once the completer has stopped.
func (c *completer) lead() {
	for c.flush() {
		c.mu.Lock()
		more, open := len(c.waiting) > 0, c.open
		c.mu.Unlock()
		if !more {
			return
		}
		if open {
			select {
			case c.wake <- struct{}{}:
			default: // already woken
			}
			return
		}
	}
}

// complete records rc for attempt run.Attempt of run and returns the run
// as stored (pending when the store granted a retry), or nil if it could
// not be recorded: fenced, refused twice, or the database unreachable for
// the completer's timeout. Safe for concurrent use.
func (c *completer) complete(run *orcheo.Run, rc orcheo.RunCompletion, log logrus.FieldLogger) *orcheo.Run {
	return <-c.submit(run, rc, log)
}

// submit hands rc to the next batch and returns at once; the channel
// receives what complete would return, once, when the completion is
// settled. A completer that is not running writes rc on the caller's
// goroutine instead, with the same rules, and returns a channel that is
// ready. What is handed in is bounded by the callers (the consumers hold
// at most concurrency plus backlog messages, each at most one completion),
// not here.
func (c *completer) submit(run *orcheo.Run, rc orcheo.RunCompletion, log logrus.FieldLogger) <-chan *orcheo.Run {
	done := c.queue(run, rc, log)
	select {
	case c.wake <- struct{}{}:
	default: // already woken
	}
	return done
}

// queue is submit without waking the writing goroutine.
func (c *completer) queue(run *orcheo.Run, rc orcheo.RunCompletion, log logrus.FieldLogger) <-chan *orcheo.Run {
	req := &completion{
		item:     orcheo.AttemptCompletion{RunID: run.ID, Attempt: run.Attempt, Completion: rc},
		log:      log.WithField("status", string(rc.Status)),
		deadline: time.Now().Add(c.timeout),
		done:     make(chan *orcheo.Run, 1),
	}
	c.mu.Lock()
	if !c.open {
		c.mu.Unlock()
		c.alone(req)
		return req.done
	}
	c.waiting = append(c.waiting, req)
	c.mu.Unlock()
	req.log.Debug("result handed to the completer")
	return req.done
}

// alone writes req by itself until it is settled: the path of a completer
// that is not running.
func (c *completer) alone(req *completion) {
	backoff := completeBackoffMin
	for {
		again, failed := c.write([]*completion{req})
		if len(again) == 0 {
			return
		}
		if failed {
			time.Sleep(backoff)
			backoff = min(backoff*2, completeBackoffMax)
		}
	}
}

// flush writes one batch of waiting completions, puts back at the front
// those to try again, and reports whether there was anything to write; it
// writes nothing while another batch is being written (whose writer looks
// again after it).
func (c *completer) flush() bool {
	c.mu.Lock()
	if c.busy {
		c.mu.Unlock()
		return false
	}
	n := min(len(c.waiting), completeBatchMax)
	if n > 0 && c.waiting[0].alone {
		n = 1
	}
	batch := make([]*completion, 0, n)
	for _, req := range c.waiting[:n] {
		if req.alone && len(batch) > 0 {
			break
		}
		batch = append(batch, req)
	}
	c.waiting = append(c.waiting[:0], c.waiting[len(batch):]...)
	if len(batch) == 0 {
		c.mu.Unlock()
		return false
	}
	c.busy = true
	c.mu.Unlock()
	again, failed := c.write(batch)
	if failed {
		// The backoff holds busy: the next try is this writer's.
		c.backoff = min(max(c.backoff*2, completeBackoffMin), completeBackoffMax)
		time.Sleep(c.backoff)
	} else {
		c.backoff = 0
	}
	c.mu.Lock()
	if len(again) > 0 {
		c.waiting = append(again, c.waiting...)
	}
	c.busy = false
	c.mu.Unlock()
	return true
}

// write makes one CompleteRuns of batch, settles what it can and returns
// what must be written again; failed reports a database error (the caller
// backs off before the next try).
func (c *completer) write(batch []*completion) (again []*completion, failed bool) {
	items := make([]orcheo.AttemptCompletion, len(batch))
	deadline := batch[0].deadline
	for i, req := range batch {
		items[i] = req.item
		if req.deadline.After(deadline) {
			deadline = req.deadline
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	results, err := c.runs.CompleteRuns(ctx, items)
	cancel()
	if err == nil && len(results) != len(batch) {
		err = errors.New("complete runs: wrong number of results")
	}
	switch {
	case err == nil:
		for i, req := range batch {
			if c.settle(req, results[i]) {
				again = append(again, req)
			}
		}
		return again, false
	case orcheo.ErrorCode(err) == orcheo.EINVALID && len(batch) > 1:
		// The database refused a value of one of them: each alone finds
		// which, and the others commit.
		for _, req := range batch {
			req.alone = true
		}
		return batch, false
	case orcheo.ErrorCode(err) == orcheo.EINVALID:
		if c.settle(batch[0], orcheo.RunCompleted{Err: err}) {
			again = append(again, batch[0])
		}
		return again, false
	}
	now := time.Now()
	for _, req := range batch {
		if now.Before(req.deadline) {
			req.log.WithError(err).Warn("complete run; retrying")
			again = append(again, req)
		} else {
			req.log.WithError(err).Error("complete run; left for the rescuer")
			req.done <- nil
		}
	}
	return again, true
}

// settle delivers req's outcome, or reports that it must be written again
// (its result was refused once and is now unstorableCompletion).
func (c *completer) settle(req *completion, res orcheo.RunCompleted) (again bool) {
	log := req.log
	switch orcheo.ErrorCode(res.Err) {
	case "":
		// The run's error may quote workflow data, so it is stored on the
		// run and logged only at debug.
		log.WithField("status", string(res.Run.Status)).Info("attempt finished")
		if req.item.Completion.Status == orcheo.RunFailed {
			log.WithField("error", req.item.Completion.Error).Debug("run failure")
		}
		req.done <- res.Run
		return false
	case orcheo.ECONFLICT, orcheo.ENOTFOUND:
		log.WithField("reason", orcheo.ErrorMessage(res.Err)).Warn("lost claim; result discarded")
	case orcheo.EINVALID:
		if !req.refused {
			log.WithError(res.Err).Warn("complete run: result refused; failing the attempt")
			req.item.Completion, req.refused = unstorableCompletion(req.item.Completion, res.Err), true
			return true
		}
		log.WithError(res.Err).Error("complete run: result refused; left for the rescuer")
	default:
		log.WithError(res.Err).Error("complete run; left for the rescuer")
	}
	req.done <- nil
	return false
}
