package tasks

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
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
	s := &RunStarter{Workflows: store.Workflows, Runs: store.Runs, Queue: q, Logger: testLogger()}

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
	t.Run("EnqueueFailsLeftToRequeuer", func(t *testing.T) {
		failing, _ := recordingQueue(errors.New("redis down"))
		s := &RunStarter{Workflows: store.Workflows, Runs: store.Runs, Queue: failing, Logger: testLogger()}
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
