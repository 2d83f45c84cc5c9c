package engine

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// readerType is a node that reads the run's state and steps in a loop for
// its "for" option, like an expression still evaluating; with "ignore_ctx"
// it does not look at its context, as a node that failed to stop.
type readerType struct{}

func (readerType) Compile(spec *Spec) (Action, error) {
	var d string
	var ignore bool
	if _, err := spec.Decode("for", &d); err != nil {
		return nil, err
	}
	if _, err := spec.Decode("ignore_ctx", &ignore); err != nil {
		return nil, err
	}
	dur, err := time.ParseDuration(d)
	if err != nil {
		return nil, spec.Errorf("for", "%v", err)
	}
	return readerAction{d: dur, ignoreCtx: ignore}, nil
}

type readerAction struct {
	d         time.Duration
	ignoreCtx bool
}

func (a readerAction) Run(ctx context.Context, scope *Scope) (Result, error) {
	for end := time.Now().Add(a.d); time.Now().Before(end); {
		if !a.ignoreCtx && ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		n := len(scope.env.State) + len(scope.env.Steps)
		for k := range scope.env.State {
			n += len(k)
		}
		_ = n
		time.Sleep(100 * time.Microsecond)
	}
	return Result{}, nil
}

// TestExecute_NoRaceWithATimedOutNode: after a node times out, the executor
// goes on (continue_on_error, then a set node writing the state) only once
// the node has stopped. It used to go on at once, writing the maps the
// node's goroutine was still reading: a data race, which is fatal to the
// whole worker process when a map is read and written at once. A node that
// does not stop within abandonGrace ends the run instead, past any
// continue_on_error. Run under -race (make test does).
func TestExecute_NoRaceWithATimedOutNode(t *testing.T) {
	t.Parallel()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	e := New(Options{Logger: logger, NodeTypes: map[string]NodeType{"reader": readerType{}}})
	const after = `{"id":"write","type":"set","values":{"a":"1","b":"2","c":"3","d":"4"}}`
	exec := func(t *testing.T, reader string) *orcheo.Execution {
		t.Helper()
		def := `{"nodes":[{"id":"seed","type":"set","values":{"x":"1"}},` + reader + `,` + after + `]}`
		if _, err := e.Compile([]byte(def)); err != nil {
			t.Fatal(err)
		}
		return e.Execute(context.Background(), []byte(def), &orcheo.Run{ID: orcheo.NewID(), Attempt: 1}, orcheo.ExecuteOptions{})
	}

	t.Run("NodeStopsGoesOn", func(t *testing.T) {
		x := exec(t, `{"id":"slow","type":"reader","for":"10s","timeout":"50ms","continue_on_error":true}`)
		if x.Err != nil || !strings.Contains(string(x.Output), `"d":4`) {
			t.Fatalf("err %v, output %s; want the run to go on past the timed-out node", x.Err, x.Output)
		}
	})
	t.Run("NodeIgnoresItsTimeoutEndsTheRun", func(t *testing.T) {
		started := time.Now()
		x := exec(t, `{"id":"stuck","type":"reader","for":"`+(abandonGrace+2*time.Second).String()+`","ignore_ctx":true,"timeout":"50ms","continue_on_error":true}`)
		if x.Err == nil || !strings.Contains(x.Err.Error(), "did not stop within") || strings.Contains(string(x.Output), `"d"`) {
			t.Fatalf("err %v, output %s; want the run ended at the stuck node", x.Err, x.Output)
		}
		if !orcheo.IsPermanent(x.Err) {
			t.Errorf("err %v is retried; a node that ignores its timeout would do so again", x.Err)
		}
		if d := time.Since(started); d < abandonGrace || d > abandonGrace+3*time.Second {
			t.Errorf("ended after %s, want about %s", d, abandonGrace)
		}
		time.Sleep(2100 * time.Millisecond) // let the stuck node end before the test does
	})
}
