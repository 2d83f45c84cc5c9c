package tasks

import (
	"context"
	"fmt"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// suspend parks a run whose execution stopped at a long delay: it saves
// the attempt's steps (the delay's one waiting), stores the checkpoint and
// puts the run back to pending until the delay ends without using up an
// attempt (RunService.SuspendRun), then asks machinery to publish the
// message again with that ETA, into the broker's delayed set. The slot is
// free meanwhile; the claim at the ETA resumes the run after the delay.
//
// A database that stays unreachable for completeTimeout leaves the run
// running: its lease expires and the rescuer starts it over as a new
// attempt. A run cancelled meanwhile ends cancelled.
func (w *Worker) suspend(run *orcheo.Run, x *orcheo.Execution, log logrus.FieldLogger) error {
	until := x.Suspended.Until
	log = log.WithField("until", until.UTC().Format(time.RFC3339))
	ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
	defer cancel()
	parked, err := retryStore(ctx, func() (*orcheo.Run, error) {
		for _, st := range x.Steps {
			if err := w.Runs.SaveRunStep(ctx, st); err != nil {
				return nil, err
			}
		}
		return w.Runs.SuspendRun(ctx, run.ID, run.Attempt, until, x.Suspended.Checkpoint)
	})
	switch {
	case orcheo.ErrorCode(err) == orcheo.ECONFLICT || orcheo.ErrorCode(err) == orcheo.ENOTFOUND:
		log.WithField("reason", orcheo.ErrorMessage(err)).Warn("lost claim; suspension discarded")
		return nil
	case err != nil:
		log.WithError(err).Error("suspend run; left for the rescuer")
		return nil
	case parked.Status != orcheo.RunPending:
		log.WithField("status", string(parked.Status)).Info("run ended as it suspended")
		return nil
	}
	delay := max(time.Until(until), 0)
	log.WithField("resume_in", delay.String()).Info("run suspended")
	return mtasks.NewErrRetryTaskLater(fmt.Sprintf("resume run %s", run.ID), delay)
}

// retryStore calls fn until it succeeds, fails in a way retrying cannot
// change (conflict, not found, invalid), or ctx ends, backing off between tries
// so that a database restart does not lose the result.
func retryStore(ctx context.Context, fn func() (*orcheo.Run, error)) (*orcheo.Run, error) {
	backoff := 100 * time.Millisecond
	for {
		r, err := fn()
		switch orcheo.ErrorCode(err) {
		case "", orcheo.ECONFLICT, orcheo.ENOTFOUND, orcheo.EINVALID:
			return r, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
