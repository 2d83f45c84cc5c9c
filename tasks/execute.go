package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

const (
	// claimRetryDelay is when a message whose claim hit a database error
	// comes back (through machinery's delayed set).
	claimRetryDelay = 5 * time.Second
	// completeTimeout bounds recording a run's result, retries included
	// (the completer's per-completion deadline).
	completeTimeout = 30 * time.Second
)

// executeRun is the execute_run task. machinery passes a context it never
// cancels; runs use the worker's runCtx instead, which Stop cancels.
//
// It returns nil for everything that must not come back: a duplicate or
// not-claimable delivery (ECONFLICT), a missing run (ENOTFOUND), and a
// finished run whether it succeeded or failed. Only a claim that could not
// reach the database returns ErrRetryTaskLater, so the message is
// re-published after claimRetryDelay.
//
// A finished run's result is handed to the completer and executeRun
// returns without waiting for the commit, freeing its slot: the broker
// waits for it off the slot (settleLater) and acks the message only after
// the commit, or moves it to the delayed set when the store granted a
// retry. Until then the run stays tracked, so its lease is renewed.
func (w *Worker) executeRun(mctx context.Context, runID string) error {
	ctx := w.runCtx
	log := w.Logger.WithFields(logrus.Fields{"component": "worker", "worker_id": w.ID, "run_id": runID})
	start := time.Now()

	// The claimer claims this run together with those other slots asked
	// for meanwhile (claimer.go); the lease starts when the batch does.
	run, err := w.claimer.claimFor(mtasks.SignatureFromContext(mctx), runID)
	switch orcheo.ErrorCode(err) {
	case "":
	case orcheo.ECONFLICT:
		log.WithField("reason", orcheo.ErrorMessage(err)).Debug("run not claimable; delivery skipped")
		return nil
	case orcheo.ENOTFOUND:
		log.Warn("run not found; delivery dropped")
		return nil
	default:
		log.WithError(err).Error("claim run; retrying later")
		return mtasks.NewErrRetryTaskLater(fmt.Sprintf("claim run %s: %v", runID, err), claimRetryDelay)
	}
	log = log.WithFields(logrus.Fields{"workflow_id": run.WorkflowID, "attempt": run.Attempt})
	log.Debug("run claimed")
	// The heartbeat renews the lease while the run executes and until its
	// completion is settled, and cancels ctx if the lease is lost (see
	// heartbeat.go).
	ctx, untrack := w.leases.track(ctx, run)
	completing := false
	defer func() {
		if !completing {
			untrack()
		}
	}()

	c, suspended := w.execute(ctx, run, log)
	if suspended != nil {
		storableSteps(suspended.Steps)
		if err := orcheo.CheckJSON("run checkpoint", suspended.Suspended.Checkpoint); err != nil {
			// The state cannot be parked, so the run cannot resume: it
			// ends now, saying why, instead of being left to the rescuer.
			c = &orcheo.RunCompletion{Status: orcheo.RunFailed, Error: orcheo.ErrorMessage(err), Steps: suspended.Steps}
		} else {
			// A long delay: the slot is free until the run resumes (suspend.go).
			return w.suspend(run, suspended, log)
		}
	}
	if c == nil {
		w.handBack(mctx, run, log)
		return nil
	}
	storable(c)
	completing = true
	settled := w.complete(run, *c, start, untrack, log)
	if sig := mtasks.SignatureFromContext(mctx); sig != nil {
		w.later.Store(sig, settled)
		return nil
	}
	// Not a broker's delivery (no signature): wait here, and let machinery
	// re-publish a retry.
	if eta := settled(); !eta.IsZero() {
		return mtasks.NewErrRetryTaskLater(fmt.Sprintf("retry run %s", run.ID), max(time.Until(eta), 0))
	}
	return nil
}

// complete hands attempt run.Attempt's result c to the completer, which
// writes it with those of other slots (completer.go), and returns at once
// the function that waits until it is settled and then does what follows
// the commit: the run stops being tracked (untrack), the Observer hears of
// it, and a retry the store granted is returned as the time its message is
// due; zero means ack the message (the run ended, or its completion was
// fenced or given up, as executeRun always acked those).
func (w *Worker) complete(run *orcheo.Run, c orcheo.RunCompletion, start time.Time, untrack func(), log logrus.FieldLogger) func() time.Time {
	// The waiter writes the batch if none is being written (hand).
	wait := w.completer.hand(run, c, log.WithField("duration", time.Since(start).String()))
	return func() time.Time {
		stored := wait()
		untrack()
		w.countAttempt(stored, c.Status) // the registry's stats
		if stored != nil && w.Observer != nil {
			w.Observer.AttemptFinished(stored, c.Status, time.Since(start))
		}
		if stored == nil || stored.Status != orcheo.RunPending || stored.NotBefore == nil {
			return time.Time{}
		}
		// The attempt failed and the store granted another (retry.go): the
		// message goes to its queue's delayed set until then.
		log.WithFields(logrus.Fields{"retry_in": max(time.Until(*stored.NotBefore), 0).String(),
			"max_attempts": stored.MaxAttempts}).Info("attempt failed; retry scheduled")
		return *stored.NotBefore
	}
}

// execute loads the run's version and executes it, resuming from the run's
// checkpoint if it has one. It returns nil when the run was interrupted
// (the worker's shutdown, or a lost lease): executeRun then hands it back
// (handBack in heartbeat.go); or the execution when it suspended at a long
// delay.
func (w *Worker) execute(ctx context.Context, run *orcheo.Run, log logrus.FieldLogger) (*orcheo.RunCompletion, *orcheo.Execution) {
	version, err := w.version(ctx, run.VersionID)
	if err != nil {
		if ctx.Err() != nil {
			if c := cancelledCompletion(ctx, nil); c != nil {
				return c, nil
			}
			log.Warn("run interrupted before it started")
			return nil, nil
		}
		log.WithError(err).Error("load workflow version")
		msg := "load workflow version: " + orcheo.ErrorMessage(err)
		return &orcheo.RunCompletion{Status: orcheo.RunFailed, Error: msg, RetryAt: retryAt(run, nil, err, time.Now())}, nil
	}
	// Steps are saved as they happen (see stepWriter); close waits for a
	// save in flight so none races the completion below.
	steps := newStepWriter(w.Runs, log, StepFlushInterval)
	exec := w.Engine.Execute(ctx, version.Definition, run, orcheo.ExecuteOptions{
		Recorder: steps, Suspendable: true, Checkpoint: run.Checkpoint})
	steps.close()
	if exec == nil {
		return &orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "engine returned no result"}, nil
	}
	if exec.Suspended != nil && exec.Err == nil {
		return nil, exec
	}
	if exec.Err != nil && ctx.Err() != nil && errors.Is(exec.Err, ctx.Err()) {
		// An operator's cancel ends the run; a shutdown or a lost lease
		// hands it back.
		if c := cancelledCompletion(ctx, exec); c != nil {
			return c, nil
		}
		log.Warn("run interrupted")
		return nil, nil
	}
	if exec.Err != nil {
		return &orcheo.RunCompletion{Status: orcheo.RunFailed, Error: exec.Err.Error(), Output: exec.Output, Steps: exec.Steps,
			RetryAt: retryAt(run, version.Definition, exec.Err, time.Now())}, nil
	}
	return &orcheo.RunCompletion{Status: orcheo.RunSucceeded, Output: exec.Output, Steps: exec.Steps}, nil
}

// storable makes c something every store keeps (orcheo.CheckJSON,
// CheckText), so that a result the database cannot hold ends the run at
// once instead of being retried until the lease runs out: error text is
// sanitised; a step input or output that cannot be stored is replaced by
// a marker (unstorableMarker); an output that cannot be stored is dropped,
// and a run that succeeded with it fails with the reason (a failed or
// cancelled run keeps its status and error, with the reason added).
func storable(c *orcheo.RunCompletion) {
	c.Error = orcheo.SanitizeText(c.Error)
	storableSteps(c.Steps)
	if len(c.Output) == 0 {
		return
	}
	err := orcheo.CheckJSON("run output", c.Output)
	if err == nil {
		return
	}
	c.Output = nil
	if c.Status == orcheo.RunSucceeded {
		c.Status, c.Error, c.RetryAt = orcheo.RunFailed, orcheo.ErrorMessage(err), nil
	} else {
		c.Error += "; " + orcheo.ErrorMessage(err)
	}
}

// storableSteps applies storable's rules to steps, in place: each changed
// step is a copy, so the engine's own steps are not touched.
func storableSteps(steps []*orcheo.RunStep) {
	for i, st := range steps {
		if st != nil {
			steps[i] = storableStep(st)
		}
	}
}

// storableStep returns st, or a copy with its error sanitised and an input
// or output no store can keep replaced by unstorableMarker.
func storableStep(st *orcheo.RunStep) *orcheo.RunStep {
	var cp *orcheo.RunStep
	edit := func() *orcheo.RunStep {
		if cp == nil {
			c := *st
			cp = &c
		}
		return cp
	}
	if e := orcheo.SanitizeText(st.Error); e != st.Error {
		edit().Error = e
	}
	if n := orcheo.SanitizeText(st.Node); n != st.Node {
		edit().Node = n
	}
	if n := orcheo.SanitizeText(st.NodeType); n != st.NodeType {
		edit().NodeType = n
	}
	if len(st.Input) > 0 {
		if err := orcheo.CheckJSON("input", st.Input); err != nil {
			edit().Input = unstorableMarker(err)
		}
	}
	if len(st.Output) > 0 {
		if err := orcheo.CheckJSON("output", st.Output); err != nil {
			edit().Output = unstorableMarker(err)
		}
	}
	if cp != nil {
		return cp
	}
	return st
}

// unstorableMarker is what a step keeps in place of an input or output no
// store can hold: {"unstorable": "output: contains a NUL character…"}.
func unstorableMarker(err error) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"unstorable": orcheo.ErrorMessage(err) + "; the value was not kept"})
	return b
}

// unstorableCompletion is the last resort when the store refused c as
// EINVALID although storable passed it (a limit of the database that
// CheckJSON does not know): the attempt fails with the store's reason,
// keeping only what cannot be at fault, the steps' names, statuses and
// times, so the run still ends at once.
func unstorableCompletion(c orcheo.RunCompletion, err error) orcheo.RunCompletion {
	steps := make([]*orcheo.RunStep, 0, len(c.Steps))
	for _, st := range c.Steps {
		if st == nil {
			continue
		}
		cp := *st
		cp.Input, cp.Output, cp.Error = nil, nil, ""
		steps = append(steps, &cp)
	}
	status := c.Status
	if status == orcheo.RunSucceeded {
		status = orcheo.RunFailed
	}
	return orcheo.RunCompletion{Status: status, Steps: steps,
		Error: orcheo.TruncateText("run result cannot be stored: "+orcheo.ErrorMessage(err), 1000)}
}

// version returns a workflow version, from memory when possible: versions
// are immutable.
func (w *Worker) version(ctx context.Context, id string) (*orcheo.WorkflowVersion, error) {
	if v := w.versions.get(id); v != nil {
		return v, nil
	}
	v, err := w.Workflows.FindWorkflowVersionByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("find workflow version %s: %w", id, err)
	}
	w.versions.put(v)
	return v, nil
}

// versionCacheSize bounds the cache; it is cleared when full, which is
// cheap because a miss costs one query.
const versionCacheSize = 1024

// versionCache holds immutable workflow versions by id. Safe for concurrent
// use; the zero value is ready.
type versionCache struct {
	mu sync.RWMutex
	m  map[string]*orcheo.WorkflowVersion
}

func (c *versionCache) get(id string) *orcheo.WorkflowVersion {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[id]
}

func (c *versionCache) put(v *orcheo.WorkflowVersion) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= versionCacheSize {
		c.m = make(map[string]*orcheo.WorkflowVersion)
	}
	c.m[v.ID] = v
}
