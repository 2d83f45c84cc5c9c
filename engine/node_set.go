package engine

import "context"

func init() { builtinTypes["set"] = setType{} }

// setType computes values: option `values` maps each key to an expression.
// Its output is the object of results, which is also merged into the state.
// Every expression sees the state as it was before the node, so the order
// of keys does not matter.
type setType struct{}

func (setType) Compile(spec *Spec) (Action, error) {
	values, err := spec.ExprMap("values", true)
	if err != nil {
		return nil, err
	}
	return &setAction{values: values}, nil
}

type setAction struct {
	values []KeyedExpr
}

func (a *setAction) Run(ctx context.Context, scope *Scope) (Result, error) {
	out := make(map[string]any, len(a.values))
	for _, kv := range a.values {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		v, err := scope.Eval(kv.Expr)
		if err != nil {
			return Result{}, err
		}
		out[kv.Key] = v
	}
	return Result{Output: out, MergeState: true}, nil
}
