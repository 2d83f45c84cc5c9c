package engine

import (
	"context"
	"encoding/json"
	"fmt"
)

func init() { builtinTypes["switch"] = switchType{} }

// switchType branches on the first matching case: option `cases` is a list
// of {when: <expression giving true or false>, to: <node id>}, tried in
// order; `default` names the node taken when none matches (optional:
// without it, nothing runs after the switch). The output is
// {"case": <index of the matching case, or null>, "branch": "<node id or null>"}.
type switchType struct{}

// Branches marks switch as a Brancher.
func (switchType) Branches() {}

func (switchType) Compile(spec *Spec) (Action, error) {
	var list []json.RawMessage
	ok, err := spec.Decode("cases", &list)
	if err != nil || (ok && len(list) == 0) {
		return nil, spec.Errorf("cases", "must be a list of {when, to}")
	}
	if !ok {
		return nil, spec.Errorf("cases", "required")
	}
	a := &switchAction{}
	for i, raw := range list {
		field := fmt.Sprintf("cases[%d]", i)
		m, ok := object(raw)
		if !ok {
			return nil, spec.Errorf(field, "must be an object {when, to}")
		}
		if err := checkKeys(m, []string{"when", "to"}, func(k string) error {
			return spec.Errorf(field+"."+k, "unknown key (want \"when\", \"to\")")
		}); err != nil {
			return nil, err
		}
		var c switchCase
		var src string
		if raw, ok := m["when"]; !ok {
			return nil, spec.Errorf(field+".when", "required")
		} else if json.Unmarshal(raw, &src) != nil {
			return nil, spec.Errorf(field+".when", "must be an expression string")
		}
		if c.when, err = spec.compile(field+".when", src); err != nil {
			return nil, err
		}
		if raw, ok := m["to"]; !ok {
			return nil, spec.Errorf(field+".to", "required")
		} else if json.Unmarshal(raw, &c.to) != nil {
			return nil, spec.Errorf(field+".to", "must be a node id")
		}
		if !a.hasTarget(c.to) {
			if err := spec.target(field+".to", c.to); err != nil {
				return nil, err
			}
		}
		a.cases = append(a.cases, c)
	}
	def, err := spec.String("default", false)
	if err != nil {
		return nil, spec.Errorf("default", "must be a node id")
	}
	if def != "" && !a.hasTarget(def) {
		if err := spec.target("default", def); err != nil {
			return nil, err
		}
	}
	a.def = def
	return a, nil
}

type switchCase struct {
	when *Expr
	to   string
}

type switchAction struct {
	cases []switchCase
	def   string
}

// hasTarget reports whether an earlier case already leads to id: several
// cases may share a target, which is one edge.
func (a *switchAction) hasTarget(id string) bool {
	for _, c := range a.cases {
		if c.to == id {
			return true
		}
	}
	return false
}

func (a *switchAction) Run(ctx context.Context, scope *Scope) (Result, error) {
	for i, c := range a.cases {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		v, err := scope.Eval(c.when)
		if err != nil {
			return Result{}, err
		}
		b, ok := v.(bool)
		if !ok {
			return Result{}, fmt.Errorf("field \"cases[%d].when\": must give true or false, got %s (expression `%s`)", i, textOf(v), c.when)
		}
		if b {
			return branchResult(map[string]any{"case": i}, c.to), nil
		}
	}
	return branchResult(map[string]any{"case": nil}, a.def), nil
}
