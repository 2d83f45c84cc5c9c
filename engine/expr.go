package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/orcheo/orcheo"
)

// exprEnv is the environment every expression is compiled and evaluated
// against. Being a struct, it makes the compiler reject unknown top-level
// names (a typo such as inptu.body fails at Compile, not in a run).
type exprEnv struct {
	Input any            `expr:"input"`
	Steps map[string]any `expr:"steps"`
	State map[string]any `expr:"state"`
	Run   runInfo        `expr:"run"`
	// Env holds the operator-exposed values (ORCHEO_WORKFLOW_ENV); a name
	// not exposed reads as nil.
	Env map[string]any `expr:"env"`

	// guard is the evaluation's; expressions cannot name it (expr sees
	// exported fields only), the engine's functions reach it through $env.
	guard *evalGuard
}

// runInfo is what expressions see of the run as `run`.
type runInfo struct {
	ID          string `expr:"id"`
	Attempt     int    `expr:"attempt"`
	TriggeredBy string `expr:"triggered_by"`
	WorkflowID  string `expr:"workflow_id"`
	// ScheduledFor is the cron slot as RFC 3339 text, nil for other runs.
	ScheduledFor any `expr:"scheduled_for"`
}

// Expr is a compiled expression. It is immutable and safe for concurrent
// use.
type Expr struct {
	source  string
	field   string
	program *vm.Program
}

// String returns the expression's source.
func (e *Expr) String() string { return e.source }

// eval runs the expression under ctx, the node's context, and within the
// limits of limits.go. It returns the result and its size as JSON (an
// upper bound, see valueSize). Errors name the option the expression came
// from and its position, on one line.
func (e *Expr) eval(ctx context.Context, env *exprEnv) (any, int, error) {
	// Each evaluation gets its own copy of the environment, so that an
	// evaluation a timeout abandoned keeps its own guard while the node's
	// next try runs.
	f := &evalFrame{env: *env}
	f.guard.ctx = ctx
	f.env.guard = &f.guard
	machine := vm.VM{MemoryBudget: ExprVMBudget}
	v, err := machine.Run(e.program, &f.env)
	if err == nil {
		var size int
		if size, err = valueSize(v, ExprByteBudget); err == nil && size > ExprByteBudget {
			err = fmt.Errorf("result is larger than %d bytes", ExprByteBudget)
		}
		if err == nil {
			return v, size, nil
		}
	}
	if stop := stopReason(ctx); stop != nil {
		// The node's timeout or cancel stopped the evaluation: that, not
		// the expression, is the node's error.
		return nil, 0, stop
	}
	// Permanent: the same expression over the same data fails again,
	// so the run is not retried.
	return nil, 0, orcheo.Permanent(fmt.Errorf("field %q: %s (expression `%s`)", e.field, exprErrorMessage(err), e.source))
}

// evalFrame holds what one evaluation allocates, in one allocation.
type evalFrame struct {
	env   exprEnv
	guard evalGuard
}

// compileExpr compiles src for the option field. nodeIDs, when not nil,
// lists the ids a `steps.<id>` reference may name.
func compileExpr(field, src string, nodeIDs map[string]bool) (_ *Expr, err error) {
	defer func() {
		// expr's compiler panics on a few malformed trees; that must
		// refuse the definition, not fail the request.
		if r := recover(); r != nil {
			err = fmt.Errorf("expression cannot be compiled: %v", r)
		}
	}()
	if err := checkExprSource(src); err != nil {
		return nil, err
	}
	p := &exprPatcher{nodeIDs: nodeIDs}
	program, err := expr.Compile(src, append(exprOptions[:len(exprOptions):len(exprOptions)], expr.Patch(p))...)
	if err != nil {
		return nil, errors.New(exprErrorMessage(err))
	}
	if p.err != nil {
		return nil, p.err
	}
	return &Expr{source: src, field: field, program: program}, nil
}

// exprErrorMessage renders an expr error on one line: the message and its
// line:column, without the multi-line source snippet.
// Go type names of the environment are replaced by what users write.
func exprErrorMessage(err error) string {
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
		if fe.Line > 0 {
			msg = fmt.Sprintf("%s (%d:%d)", fe.Message, fe.Line, fe.Column+1)
		}
	}
	return envTypeNames.Replace(msg)
}

var envTypeNames = strings.NewReplacer("engine.runInfo", "run", "engine.exprEnv", "environment")

// exprPatcher adjusts and checks an expression's syntax tree before type
// checking:
//
//   - On the left of `??`, member access on nil yields nil instead of an
//     error, as if every `.` were `?.`: `input.body.name ?? "world"` falls
//     back when there is no body, which is what a reader expects.
//   - `steps.<id>` must name a node of the definition.
//   - Every loop iteration (the predicate of map, filter, all, reduce, …)
//     first calls orcheo_tick, which stops the evaluation when its node's
//     context is done or its step budget is spent; a map literal charges
//     its size the same way (expr counts one unit per entry only).
//   - The bounded builtins (builtins.go) get $env as a hidden first
//     argument, to find the evaluation's guard.
//   - `+` that may join strings becomes orcheo_add, which charges the
//     result; `matches` with a pattern computed at run time becomes
//     orcheo_matches, which bounds the pattern.
type exprPatcher struct {
	nodeIDs map[string]bool
	err     error
}

// Visit implements ast.Visitor. ast.Walk visits children before parents,
// so nested `??` chains are handled innermost first.
func (p *exprPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && guardedNames[id.Value] {
			n.Arguments = append([]ast.Node{envNode(n)}, n.Arguments...)
		}
	case *ast.BuiltinNode:
		loop := false
		for _, a := range n.Arguments {
			if pred, ok := a.(*ast.PredicateNode); ok {
				step := stepName
				if n.Name == "groupBy" {
					step = stepGroupName
				}
				pred.Node = withStep(pred.Node, step)
				loop = true
			}
		}
		if loop {
			ast.Patch(node, withTick(n, n.Name, loopCost))
		}
	case *ast.MapNode:
		// Go's smallest map and each entry's share of its table.
		ast.Patch(node, withTick(n, "map literal", 256+64*len(n.Pairs)))
	case *ast.BinaryNode:
		switch n.Operator {
		case "+":
			l, r := kindOf(n.Left), kindOf(n.Right)
			if l == reflect.String || r == reflect.String || (l == reflect.Interface && r == reflect.Interface) {
				ast.Patch(node, guardedCall(n, addName, n.Left, n.Right))
			}
			return
		case "matches":
			if _, ok := n.Right.(*ast.StringNode); !ok {
				ast.Patch(node, guardedCall(n, matchesName, n.Left, n.Right))
			}
			return
		case "??":
		default:
			return
		}
		left := n.Left
		if chain, ok := left.(*ast.ChainNode); ok {
			left = chain.Node
		}
		member, ok := left.(*ast.MemberNode)
		if !ok {
			return
		}
		for m := member; m != nil; {
			m.Optional = true
			next, _ := m.Node.(*ast.MemberNode)
			m = next
		}
		if _, ok := n.Left.(*ast.ChainNode); !ok {
			ast.Patch(&n.Left, &ast.ChainNode{Node: n.Left})
		}
	case *ast.MemberNode:
		ident, ok := n.Node.(*ast.IdentifierNode)
		if !ok || ident.Value != "steps" || p.nodeIDs == nil {
			return
		}
		if name, ok := n.Property.(*ast.StringNode); ok && !p.nodeIDs[name.Value] && p.err == nil {
			p.err = fmt.Errorf("unknown step %q", name.Value)
		}
	}
}

// kindOf is the kind the checker found for n: reflect.Interface when it is
// not known before run time.
func kindOf(n ast.Node) reflect.Kind {
	if t := n.Type(); t != nil {
		return t.Kind()
	}
	return reflect.Interface
}

// envNode is $env, placed at at's position.
func envNode(at ast.Node) ast.Node {
	n := &ast.IdentifierNode{Value: "$env"}
	n.SetLocation(at.Location())
	return n
}

// guardedCall is a call of the engine's function name with $env and args.
func guardedCall(at ast.Node, name string, args ...ast.Node) ast.Node {
	callee := &ast.IdentifierNode{Value: name}
	callee.SetLocation(at.Location())
	call := &ast.CallNode{Callee: callee, Arguments: append([]ast.Node{envNode(at)}, args...)}
	call.SetLocation(at.Location())
	return call
}

// withTick returns `orcheo_tick($env, what, cost); n`, which has n's
// value and type.
func withTick(n ast.Node, what string, cost int) ast.Node {
	w := &ast.StringNode{Value: what}
	w.SetLocation(n.Location())
	c := &ast.IntegerNode{Value: cost}
	c.SetLocation(n.Location())
	return sequence(guardedCall(n, tickName, w, c), n)
}

// withStep returns `orcheo_step($env); n` for the loop body n.
func withStep(n ast.Node, step string) ast.Node {
	call := &ast.BuiltinNode{Name: step, Arguments: []ast.Node{envNode(n)}}
	call.SetLocation(n.Location())
	return sequence(call, n)
}

func sequence(first, n ast.Node) ast.Node {
	seq := &ast.SequenceNode{Nodes: []ast.Node{first, n}}
	seq.SetLocation(n.Location())
	return seq
}
