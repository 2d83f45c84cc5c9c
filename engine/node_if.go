package engine

import (
	"context"
	"fmt"
)

func init() { builtinTypes["if"] = ifType{} }

// ifType branches: option `condition` is an expression that must give true
// or false; `then` and `else` name the nodes each result leads to (else is
// optional: without it, false leads nowhere). The branch not taken, and
// what only it leads to, is recorded as skipped. The output is
// {"result": <bool>, "branch": "<node id or null>"}.
type ifType struct{}

// Branches marks if as a Brancher.
func (ifType) Branches() {}

func (ifType) Compile(spec *Spec) (Action, error) {
	cond, err := spec.Expr("condition", true)
	if err != nil {
		return nil, err
	}
	then, err := spec.Target("then", true)
	if err != nil {
		return nil, err
	}
	els, err := spec.Target("else", false)
	if err != nil {
		return nil, err
	}
	return &ifAction{condition: cond, then: then, els: els}, nil
}

type ifAction struct {
	condition *Expr
	then, els string
}

func (a *ifAction) Run(ctx context.Context, scope *Scope) (Result, error) {
	v, err := scope.Eval(a.condition)
	if err != nil {
		return Result{}, err
	}
	b, ok := v.(bool)
	if !ok {
		return Result{}, fmt.Errorf("field \"condition\": must give true or false, got %s (expression `%s`)", textOf(v), a.condition)
	}
	branch := a.els
	if b {
		branch = a.then
	}
	return branchResult(map[string]any{"result": b}, branch), nil
}

// branchResult follows branch only ("" follows nothing) and outputs it.
func branchResult(out map[string]any, branch string) Result {
	if branch == "" {
		out["branch"] = nil
		return Result{Output: out, Next: []string{}}
	}
	out["branch"] = branch
	return Result{Output: out, Next: []string{branch}}
}
