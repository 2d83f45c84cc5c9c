package engine

import (
	"context"
	"fmt"
	"time"
)

func init() { builtinTypes["delay"] = delayType{} }

// delayType waits: option `duration` (a Go duration, fixed when the
// definition is compiled) or `until` (an expression giving an RFC 3339
// time). A wait up to the engine's SuspendDelaysAfter sleeps under the
// node's context, so a cancel or timeout ends it at once. A longer one
// suspends the run when the caller allows it (Scope.canSuspend): the node
// returns a suspendSignal, the executor records its step as waiting and
// ends the execution with a checkpoint, and the worker slot is free until
// the run resumes after the delay (checkpoint.go). Every wait is bounded
// by the engine's MaxDelay: a longer duration is rejected at compile time,
// a later `until` fails the node. A time in the past does not wait. The
// output is {"until": "<RFC 3339>", "waited": "<duration>"}.
type delayType struct{}

func (delayType) Compile(spec *Spec) (Action, error) {
	d, err := spec.Duration("duration")
	if err != nil {
		return nil, err
	}
	until, err := spec.Expr("until", false)
	if err != nil {
		return nil, err
	}
	switch {
	case d == 0 && until == nil:
		return nil, spec.Errorf("duration", "set duration or until")
	case d > 0 && until != nil:
		return nil, spec.Errorf("until", "set either duration or until, not both")
	case d > spec.MaxDelay():
		return nil, spec.Errorf("duration", "%s is longer than the longest delay allowed (%s); use a cron trigger for longer waits", d, spec.MaxDelay())
	}
	return &delayAction{duration: d, until: until, max: spec.MaxDelay()}, nil
}

type delayAction struct {
	duration time.Duration
	until    *Expr
	max      time.Duration
}

func (a *delayAction) Run(ctx context.Context, scope *Scope) (Result, error) {
	start := scope.Now()
	end := start.Add(a.duration)
	if a.until != nil {
		v, err := scope.Eval(a.until)
		if err != nil {
			return Result{}, err
		}
		if end, err = parseTime(v); err != nil {
			return Result{}, fmt.Errorf("field \"until\": %w (expression `%s`)", err, a.until)
		}
		if end.Sub(start) > a.max {
			return Result{}, fmt.Errorf("field \"until\": %s is more than %s away, the longest delay allowed", end.UTC().Format(time.RFC3339), a.max)
		}
	}
	scope.SetInput(map[string]any{"until": end.UTC().Format(time.RFC3339Nano)})
	wait := end.Sub(start)
	if wait > 0 && scope.canSuspend(ctx, end) {
		return Result{}, &suspendSignal{until: end}
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-t.C:
		}
	}
	return Result{Output: map[string]any{
		"until":  end.UTC().Format(time.RFC3339Nano),
		"waited": max(wait, 0).Round(time.Millisecond).String(),
	}}, nil
}

// parseTime reads an expression result as a time: a time value, or text in
// RFC 3339.
func parseTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", x)
		}
		return t, nil
	default:
		return time.Time{}, fmt.Errorf("must give an RFC 3339 time, got %s", textOf(v))
	}
}
