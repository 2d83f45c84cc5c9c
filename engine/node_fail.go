package engine

import (
	"context"
	"errors"

	"github.com/orcheo/orcheo"
)

func init() { builtinTypes["fail"] = failType{} }

// failType fails the run on purpose. Option `message` is an expression whose
// result (as text) becomes the step's and the run's error.
type failType struct{}

func (failType) Compile(spec *Spec) (Action, error) {
	msg, err := spec.Expr("message", true)
	if err != nil {
		return nil, err
	}
	return &failAction{message: msg}, nil
}

type failAction struct {
	message *Expr
}

func (a *failAction) Run(ctx context.Context, scope *Scope) (Result, error) {
	v, err := scope.Eval(a.message)
	if err != nil {
		return Result{}, err
	}
	text := textOf(v)
	if text == "" {
		text = "failed by fail node"
	}
	// Permanent: failing again would fail the same way, so the run is not
	// retried (its workflow's retry policy applies to other failures).
	return Result{}, orcheo.Permanent(errors.New(text))
}
