package engine

import (
	"errors"
	"fmt"
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

// eval runs the expression. Errors name the option the expression came from
// and its position, on one line.
func (e *Expr) eval(env *exprEnv) (any, error) {
	v, err := vm.Run(e.program, env)
	if err != nil {
		// Permanent: the same expression over the same data fails again,
		// so the run is not retried.
		return nil, orcheo.Permanent(fmt.Errorf("field %q: %s (expression `%s`)", e.field, exprErrorMessage(err), e.source))
	}
	return v, nil
}

// compileExpr compiles src for the option field. nodeIDs, when not nil,
// lists the ids a `steps.<id>` reference may name.
func compileExpr(field, src string, nodeIDs map[string]bool) (*Expr, error) {
	p := &exprPatcher{nodeIDs: nodeIDs}
	program, err := expr.Compile(src, expr.Env(exprEnv{}), expr.Patch(p))
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
type exprPatcher struct {
	nodeIDs map[string]bool
	err     error
}

// Visit implements ast.Visitor. ast.Walk visits children before parents,
// so nested `??` chains are handled innermost first.
func (p *exprPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		if n.Operator != "??" {
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
