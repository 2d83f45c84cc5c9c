package engine

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// NodeType is one kind of node ("set", "log", …). Implementations are
// stateless and safe for concurrent use: Compile is called once per node of
// every compiled definition, and the returned Action may run concurrently
// for different runs.
type NodeType interface {
	// Compile decodes and validates the node's options through spec and
	// returns the runnable node. Every option the node accepts must be read
	// through spec; options left unread are reported as unknown. Errors
	// should come from spec.Errorf so that they name the node and field.
	Compile(spec *Spec) (Action, error)
}

// Action is a compiled node.
type Action interface {
	// Run executes the node once. ctx carries the node's deadline and the
	// run's cancellation; an Action that waits on anything must honour it.
	// A returned error fails the node and the run; its message is what the
	// step and the run record.
	Run(ctx context.Context, scope *Scope) (Result, error)
}

// Result is what a node produced.
type Result struct {
	// Output is the step's output. It must encode to JSON; nil records no
	// output. Later expressions see it, after a JSON round trip, as
	// steps.<id>.output.
	Output any
	// MergeState merges Output, which must then be a JSON object, into the
	// run's state key by key.
	MergeState bool
	// Next lists the targets of the outgoing edges to follow. Nil follows
	// every outgoing edge; a non-nil empty slice follows none. Branching
	// node types use it to choose a path; nodes left unreached are recorded
	// as skipped steps.
	Next []string
}

// Scope is what a running node sees: the run, the expression environment
// and a logger carrying the run's fields.
type Scope struct {
	// Node and Type identify the running node.
	Node string
	Type string
	// Run is the run being executed. Actions must not modify it.
	Run *orcheo.Run
	// Logger carries run_id, workflow_id, component and node fields.
	Logger logrus.FieldLogger

	env    *exprEnv
	engine *Engine
	// ctx is the node's context, which its expressions stop on.
	ctx context.Context
	// produced is what the node's expressions returned so far, as JSON;
	// MaxNodeOutputBytes bounds it.
	produced int
	step     *liveStep
	// nodeTimeout is set when the node has a timeout of its own; timeout
	// is its length.
	nodeTimeout bool
	timeout     time.Duration
	// resume is set when the node is a workflow node whose run resumes
	// from a suspension while it waited for its child.
	resume *childWait
	// suspendable is ExecuteOptions.Suspendable (see canSuspend).
	suspendable bool
}

// Eval evaluates a compiled expression against the run's input, the outputs
// of earlier steps, the state and the run.
// An expression stops when the node times out or is cancelled, and fails
// when it passes the limits of limits.go.
func (s *Scope) Eval(e *Expr) (any, error) {
	v, size, err := e.eval(s.context(), s.env)
	if err != nil {
		return nil, err
	}
	if err := s.produce(e.field, size); err != nil {
		return nil, err
	}
	return v, nil
}

// Render evaluates a template.
func (s *Scope) Render(t *Template) (string, error) {
	text, err := t.render(s.context(), s.env)
	if err != nil {
		return "", err
	}
	if err := s.produce(t.field, len(text)); err != nil {
		return "", err
	}
	return text, nil
}

func (s *Scope) context() context.Context {
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

// produce counts size bytes of results towards MaxNodeOutputBytes, so that
// a node with many expressions (a set node's values) is bounded as a whole.
func (s *Scope) produce(field string, size int) error {
	if s.produced += size; s.produced > MaxNodeOutputBytes {
		return orcheo.Permanent(fmt.Errorf("field %q: the node's expressions returned more than %d bytes", field, MaxNodeOutputBytes))
	}
	return nil
}

// SetInput records a summary of what the node acts on (an URL, an end
// time) on its step, at once, so that a running step shows it. v must
// encode to JSON; it must not hold secrets such as header values.
func (s *Scope) SetInput(v any) {
	if s.step == nil {
		return
	}
	raw, err := marshal(v)
	if err != nil {
		return
	}
	s.step.setInput(raw)
}

// Now returns the engine's clock reading.
func (s *Scope) Now() time.Time {
	if s.engine == nil {
		return time.Now()
	}
	return s.engine.now()
}

// builtinTypes holds the node types every Engine knows. Each node type's
// file registers itself here from an init function.
var builtinTypes = map[string]NodeType{}

// typeNames returns the sorted names of types, for error messages.
func typeNames(types map[string]NodeType) []string {
	names := make([]string, 0, len(types))
	for name := range types {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
