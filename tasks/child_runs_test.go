package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/mock"
)

// recordingQueue is a RunQueue that records the runs it is given, or
// fails every enqueue with err.
func recordingQueue(err error) (*mock.RunQueue, func() []string) {
	var (
		mu  sync.Mutex
		ids []string
	)
	q := &mock.RunQueue{EnqueueRunFn: func(_ context.Context, run *orcheo.Run) error {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			ids = append(ids, run.ID)
		}
		return err
	}}
	return q, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), ids...)
	}
}

func TestRunStarter_StartChildRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openStore(t, db.BackendSQLite, "")
	f := &fixture{store: store, engine: engine.New(engine.Options{Logger: testLogger()})}
	parent := f.createRun(t, okDefinition, `{}`)
	child := f.createRun(t, okDefinition, `{}`)
	childWF, err := store.Workflows.FindWorkflowByRef(ctx, child.WorkflowID)
	if err != nil {
		t.Fatal(err)
	}
	q, enqueued := recordingQueue(nil)
	s := &RunStarter{Workflows: store.Workflows, Runs: store.Runs, Submitter: startSubmitter(t, store.Runs, q)}

	t.Run("OK", func(t *testing.T) {
		run, err := s.StartChildRun(ctx, orcheo.ChildRun{Parent: parent, Node: "call", Workflow: childWF.Handle})
		if err != nil {
			t.Fatal(err)
		}
		if run.WorkflowID != childWF.ID || run.VersionID != childWF.LatestVersionID ||
			run.TriggeredBy != orcheo.TriggerWorkflow || string(run.Input) != `{}` {
			t.Fatalf("child run = %+v", run)
		}
		if got := enqueued(); len(got) != 1 || got[0] != run.ID {
			t.Fatalf("enqueued %v, want [%s]", got, run.ID)
		}
		// The same node attempt again (a redelivery): the same child, no
		// second message.
		again, err := s.StartChildRun(ctx, orcheo.ChildRun{Parent: parent, Node: "call", Workflow: childWF.ID})
		if err != nil || again.ID != run.ID {
			t.Fatalf("second start = %v, %v; want the same child %s", again, err, run.ID)
		}
		if got := enqueued(); len(got) != 1 {
			t.Fatalf("enqueued %v after the repeat, want one message", got)
		}
		// Another node of the same attempt is another child.
		other, err := s.StartChildRun(ctx, orcheo.ChildRun{Parent: parent, Node: "call2", Workflow: childWF.ID, Input: []byte(`{"a":1}`)})
		if err != nil || other.ID == run.ID || string(other.Input) != `{"a":1}` {
			t.Fatalf("other node's child = %+v, %v", other, err)
		}
	})
	t.Run("SameAttemptAfterSuspension", func(t *testing.T) {
		first, err := s.StartChildRun(ctx, orcheo.ChildRun{Parent: parent, Node: "resumed", Workflow: childWF.ID})
		if err != nil {
			t.Fatal(err)
		}
		// A claim after a suspension or a hand-back numbers its attempt on
		// but releases one: the same attempt, the same child.
		resumed := *parent
		resumed.Attempt, resumed.ReleasedAttempts = parent.Attempt+2, parent.ReleasedAttempts+2
		again, err := s.StartChildRun(ctx, orcheo.ChildRun{Parent: &resumed, Node: "resumed", Workflow: childWF.ID})
		if err != nil || again.ID != first.ID {
			t.Fatalf("start after a suspension = %v, %v; want the same child %s", again, err, first.ID)
		}
		// A retry of the run is a new attempt: a new child.
		retried := *parent
		retried.Attempt++
		other, err := s.StartChildRun(ctx, orcheo.ChildRun{Parent: &retried, Node: "resumed", Workflow: childWF.ID})
		if err != nil || other.ID == first.ID {
			t.Fatalf("start in a retry = %v, %v; want a new child", other, err)
		}
	})
	t.Run("EnqueueFailsLeftToRequeuer", func(t *testing.T) {
		failing, _ := recordingQueue(errors.New("redis down"))
		s := &RunStarter{Workflows: store.Workflows, Runs: store.Runs, Submitter: startSubmitter(t, store.Runs, failing)}
		run, err := s.StartChildRun(ctx, orcheo.ChildRun{Parent: parent, Node: "later", Workflow: childWF.ID})
		if err != nil {
			t.Fatalf("a failed enqueue must not fail the node: %v", err)
		}
		claimed, err := store.Runs.ClaimUnenqueuedRuns(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range claimed {
			found = found || c.ID == run.ID
		}
		if !found {
			t.Fatalf("child %s not marked unenqueued (claimed %d runs)", run.ID, len(claimed))
		}
	})
	t.Run("ErrNoParent", func(t *testing.T) {
		_, err := s.StartChildRun(ctx, orcheo.ChildRun{Node: "call", Workflow: childWF.ID})
		if orcheo.ErrorCode(err) != orcheo.EINVALID {
			t.Fatalf("err = %v, want EINVALID", err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := s.StartChildRun(ctx, orcheo.ChildRun{Parent: parent, Node: "call", Workflow: "no-such-workflow"})
		if orcheo.ErrorCode(err) != orcheo.ENOTFOUND {
			t.Fatalf("err = %v, want ENOTFOUND", err)
		}
	})
	t.Run("ErrArchived", func(t *testing.T) {
		archived := f.createRun(t, okDefinition, `{}`)
		if _, err := store.Workflows.ArchiveWorkflow(ctx, archived.WorkflowID); err != nil {
			t.Fatal(err)
		}
		_, err := s.StartChildRun(ctx, orcheo.ChildRun{Parent: parent, Node: "arch", Workflow: archived.WorkflowID})
		if orcheo.ErrorCode(err) != orcheo.ECONFLICT {
			t.Fatalf("err = %v, want ECONFLICT", err)
		}
	})
}

// TestWorker_ChildWaitSuspends runs a worker with one slot on a real
// redis-server: a parent whose workflow node waits on a child of the same
// queue suspends after its in-slot wait, which frees the only slot for the
// child; the parent then resumes, finds the child done and completes with
// the child's output. Holding the slot while waiting would deadlock here.
func TestWorker_ChildWaitSuspends(t *testing.T) {
	t.Parallel()
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := openStore(t, backend, "tasks_child_wait")
			rs := testenv.StartRedis(t)
			f := newFixture(t, store, rs.URL())
			f.worker.cfg.Concurrency = 1
			starter := &RunStarter{Workflows: store.Workflows, Runs: store.Runs, Submitter: f.worker.Submitter}
			f.engine = engine.New(engine.Options{Logger: testLogger(), Runs: starter,
				SuspendChildWaitAfter: 200 * time.Millisecond, ChildPollInterval: 100 * time.Millisecond})
			f.worker.Engine = f.engine
			f.start(t)

			compiled, err := f.engine.Compile([]byte(okDefinition))
			if err != nil {
				t.Fatal(err)
			}
			childWF := &orcheo.Workflow{Handle: "double-" + strings.ToLower(orcheo.NewID()[24:]), Name: "double"}
			if _, err := store.Workflows.CreateWorkflow(ctx, childWF, compiled); err != nil {
				t.Fatal(err)
			}
			parent := f.createRun(t, `{"nodes":[
				{"id":"a","type":"set","values":{"n":"input.n"}},
				{"id":"call","type":"workflow","workflow":"`+childWF.Handle+`","input":"{\"n\": state.n}"},
				{"id":"use","type":"set","values":{"got":"steps.call.output.output.x"}}]}`, `{"n":21}`)
			if err := f.queue.EnqueueRun(ctx, parent); err != nil {
				t.Fatal(err)
			}

			done := f.waitTerminal(t, parent.ID)
			if done.Status != orcheo.RunSucceeded {
				t.Fatalf("parent %s (error %q), steps %s", done.Status, done.Error, stepList(done.Steps))
			}
			var out struct{ N, Got float64 }
			if err := json.Unmarshal(done.Output, &out); err != nil || out.N != 21 || out.Got != 42 {
				t.Fatalf("parent output = %s", done.Output)
			}
			// a and the wait in the first attempt; the wait ends, and use
			// runs, in the attempt that found the child done.
			last := done.Attempt
			want := "1/1 a succeeded, 2/1 call waiting, 2/" + itoa(last) + " call succeeded, 3/" + itoa(last) + " use succeeded"
			if got := stepList(done.Steps); got != want || last < 2 || done.ReleasedAttempts != last-1 {
				t.Fatalf("steps = %s, want %s (attempt %d, released %d)", got, want, last, done.ReleasedAttempts)
			}
			children, _, err := store.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &childWF.ID})
			if err != nil || len(children) != 1 || children[0].Status != orcheo.RunSucceeded || children[0].TriggeredBy != orcheo.TriggerWorkflow {
				t.Fatalf("children = %+v, %v", children, err)
			}
		})
	}
}

// TestRunStarter_Bounds: a chain of parents deeper than MaxDepth, a run
// starting more than MaxChildren children and a tree holding more than
// MaxTree runs are refused with EINVALID, while a repeated start of a child
// that exists still finds it.
func TestRunStarter_Bounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openStore(t, db.BackendSQLite, "")
	f := &fixture{store: store, engine: engine.New(engine.Options{Logger: testLogger()})}
	root := f.createRun(t, okDefinition, `{}`)
	wf, err := store.Workflows.FindWorkflowByRef(ctx, root.WorkflowID)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := recordingQueue(nil)
	s := &RunStarter{Workflows: store.Workflows, Runs: store.Runs, Submitter: startSubmitter(t, store.Runs, q),
		MaxDepth: 2, MaxChildren: 3, MaxTree: 5}
	start := func(parent *orcheo.Run, node string) (*orcheo.Run, error) {
		return s.StartChildRun(ctx, orcheo.ChildRun{Parent: parent, Node: node, Workflow: wf.ID})
	}
	refused := func(t *testing.T, err error, want string) {
		t.Helper()
		if orcheo.ErrorCode(err) != orcheo.EINVALID || !strings.Contains(orcheo.ErrorMessage(err), want) {
			t.Fatalf("err = %v, want EINVALID mentioning %q", err, want)
		}
	}

	c1, err := start(root, "n1")
	if err != nil || c1.ParentRunID != root.ID || c1.RootRunID != root.ID || c1.Depth != 1 {
		t.Fatalf("child = %+v, %v", c1, err)
	}
	g1, err := start(c1, "n1")
	if err != nil || g1.ParentRunID != c1.ID || g1.RootRunID != root.ID || g1.Depth != 2 {
		t.Fatalf("grandchild = %+v, %v", g1, err)
	}
	_, err = start(g1, "n1")
	refused(t, err, "nest at most 2 deep")

	for _, n := range []string{"n2", "n3"} {
		if _, err := start(root, n); err != nil {
			t.Fatalf("child %s: %v", n, err)
		}
	}
	_, err = start(root, "n4")
	refused(t, err, "has started 3 child runs")
	// The first child again (a retried node, a resume): found, not refused.
	if again, err := start(root, "n1"); err != nil || again.ID != c1.ID {
		t.Fatalf("repeated start = %v, %v; want child %s", again, err, c1.ID)
	}

	// root has 3 children and a grandchild: one more run fills the tree.
	if _, err := start(c1, "n2"); err != nil {
		t.Fatalf("fifth run of the tree: %v", err)
	}
	_, err = start(c1, "n3")
	refused(t, err, "already has 5 runs below it")
}

// TestWorker_SelfStartingWorkflowBounded runs a workflow that starts itself
// without waiting on a real worker: it used to start runs until someone
// archived it. With MaxDepth 3 the chain stops at the run 3 levels below the
// root, whose workflow node fails with the reason; nothing else is started.
func TestWorker_SelfStartingWorkflowBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openStore(t, db.BackendPostgres, "tasks_child_bounds")
	rs := testenv.StartRedis(t)
	f := newFixture(t, store, rs.URL())
	starter := &RunStarter{Workflows: store.Workflows, Runs: store.Runs, Submitter: f.worker.Submitter, MaxDepth: 3}
	f.engine = engine.New(engine.Options{Logger: testLogger(), Runs: starter})
	f.worker.Engine = f.engine
	f.start(t)

	handle := "loop-" + strings.ToLower(orcheo.NewID()[24:])
	compiled, err := f.engine.Compile([]byte(`{"nodes":[{"id":"again","type":"workflow","workflow":"` + handle + `","wait":false}]}`))
	if err != nil {
		t.Fatal(err)
	}
	wf := &orcheo.Workflow{Handle: handle, Name: "starts itself"}
	if _, err := store.Workflows.CreateWorkflow(ctx, wf, compiled); err != nil {
		t.Fatal(err)
	}
	root, _, err := store.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.queue.EnqueueRun(ctx, root); err != nil {
		t.Fatal(err)
	}

	// Wait until every run of the workflow has ended and none was added
	// for a while: the chain has stopped by itself.
	var runs []*orcheo.Run
	deadline := time.Now().Add(20 * time.Second)
	for stable := 0; stable < 5; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the chain did not stop: %d runs", len(runs))
		}
		got, _, err := store.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		ended := true
		for _, r := range got {
			ended = ended && r.Status.Terminal()
		}
		if ended && len(got) == len(runs) {
			stable++
		} else {
			stable = 0
		}
		runs = got
	}
	if len(runs) != 4 {
		t.Fatalf("%d runs, want the root and 3 levels of children", len(runs))
	}
	deepest := runs[0]
	for _, r := range runs {
		if r.Depth > deepest.Depth {
			deepest = r
		}
	}
	if deepest.Depth != 3 || deepest.RootRunID != root.ID || deepest.Status != orcheo.RunFailed ||
		!strings.Contains(deepest.Error, "nest at most 3 deep") {
		t.Fatalf("deepest run: depth %d, root %s, %s %q", deepest.Depth, deepest.RootRunID, deepest.Status, deepest.Error)
	}
	for _, r := range runs {
		if r != deepest && r.Status != orcheo.RunSucceeded {
			t.Errorf("run at depth %d: %s %q", r.Depth, r.Status, r.Error)
		}
	}
}
