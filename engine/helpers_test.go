package engine_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

// bundle is what a test needs around an Engine.
type bundle struct {
	engine *engine.Engine
	logs   *test.Hook
	block  *blockType
}

// setup returns an Engine with a stepping clock (each reading one second
// after the last, from 2026-01-01), a log hook, and the test node types
// "block", "panic", "bad_output" and "branch".
func setup(tb testing.TB) *bundle {
	tb.Helper()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	logger.SetLevel(logrus.DebugLevel)
	hook := test.NewLocal(logger)
	block := &blockType{started: make(chan struct{}, 16), release: make(chan struct{})}
	tb.Cleanup(block.Release)
	return &bundle{
		engine: engine.New(engine.Options{
			Logger: logger,
			Now:    steppingClock(),
			NodeTypes: map[string]engine.NodeType{
				"block":      block,
				"panic":      panicType{},
				"bad_output": badOutputType{},
				"branch":     branchType{},
			},
		}),
		logs:  hook,
		block: block,
	}
}

var clockStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func steppingClock() func() time.Time {
	var mu sync.Mutex
	t := clockStart
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := t
		t = t.Add(time.Second)
		return now
	}
}

// mustCompile compiles def or fails the test.
func mustCompile(tb testing.TB, e *engine.Engine, def string) []byte {
	tb.Helper()
	c, err := e.Compile([]byte(def))
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return c
}

// execute compiles and executes def for a run with input.
func (b *bundle) execute(tb testing.TB, ctx context.Context, def, input string) *orcheo.Execution {
	tb.Helper()
	c := mustCompile(tb, b.engine, def)
	run := &orcheo.Run{ID: "run-1", WorkflowID: "wf-1", Attempt: 2, TriggeredBy: orcheo.TriggerWebhook}
	if input != "" {
		run.Input = []byte(input)
	}
	return b.engine.Execute(ctx, c, run, orcheo.ExecuteOptions{})
}

// stepSummary is the part of a step most tests compare.
type stepSummary struct {
	Node, Status, Output, Error string
}

func summarize(steps []*orcheo.RunStep) []stepSummary {
	out := make([]stepSummary, len(steps))
	for i, s := range steps {
		out[i] = stepSummary{s.Node, string(s.Status), string(s.Output), s.Error}
	}
	return out
}

// blockType's nodes signal started, then wait for the node's context, or,
// with option ignore_ctx: true, for Release only — to show that a node that
// ignores its context is still stopped by its timeout.
type blockType struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockType) Release() { b.once.Do(func() { close(b.release) }) }

func (b *blockType) Compile(spec *engine.Spec) (engine.Action, error) {
	var ignore bool
	if _, err := spec.Decode("ignore_ctx", &ignore); err != nil {
		return nil, err
	}
	return blockAction{b: b, ignoreCtx: ignore}, nil
}

type blockAction struct {
	b         *blockType
	ignoreCtx bool
}

func (a blockAction) Run(ctx context.Context, _ *engine.Scope) (engine.Result, error) {
	a.b.started <- struct{}{}
	if a.ignoreCtx {
		<-a.b.release
		return engine.Result{Output: "released"}, nil
	}
	select {
	case <-ctx.Done():
		return engine.Result{}, ctx.Err()
	case <-a.b.release:
		return engine.Result{Output: "released"}, nil
	}
}

type panicType struct{}

func (panicType) Compile(*engine.Spec) (engine.Action, error) { return panicType{}, nil }
func (panicType) Run(context.Context, *engine.Scope) (engine.Result, error) {
	panic(errors.New("boom"))
}

type badOutputType struct{}

func (badOutputType) Compile(*engine.Spec) (engine.Action, error) { return badOutputType{}, nil }
func (badOutputType) Run(context.Context, *engine.Scope) (engine.Result, error) {
	return engine.Result{Output: map[string]any{"ch": make(chan int)}}, nil
}

// branchType follows only the edge to its `to` option (an expression), the
// way if/switch nodes will.
type branchType struct{}

func (branchType) Compile(spec *engine.Spec) (engine.Action, error) {
	to, err := spec.Expr("to", true)
	if err != nil {
		return nil, err
	}
	return branchAction{to: to}, nil
}

type branchAction struct{ to *engine.Expr }

func (a branchAction) Run(_ context.Context, scope *engine.Scope) (engine.Result, error) {
	v, err := scope.Eval(a.to)
	if err != nil {
		return engine.Result{}, err
	}
	s, _ := v.(string)
	return engine.Result{Output: map[string]any{"chose": s}, Next: []string{s}}, nil
}
