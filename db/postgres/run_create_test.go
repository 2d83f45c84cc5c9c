package postgres

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
	"github.com/orcheo/orcheo/internal/testenv"
)

// TestCreateRunsRetriedStatement: the statement of a batch run again after
// its first try committed (a connection cut before the answer, retried on a
// fresh one) finds the runs' own ids stored and reports them created, once,
// with one "created" event each: the retry is idempotent because the run
// ids are made by the application.
func TestCreateRunsRetriedStatement(t *testing.T) {
	ctx := context.Background()
	pdb, err := Open(ctx, testenv.PostgresURL(t, "db_postgres_create_retry"))
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	wf := &orcheo.Workflow{Handle: "retried", Name: "retried"}
	if _, err := NewWorkflowService(pdb).CreateWorkflow(ctx, wf, json.RawMessage(`{"nodes":[{"id":"a","type":"log"}]}`)); err != nil {
		t.Fatal(err)
	}
	s := NewRunService(pdb)
	now := pdb.now()
	var ins []*orcheo.Run
	for _, key := range []string{"", "k"} {
		in := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerManual, IdempotencyKey: key}
		if err := rules.NewRun(in, now); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	for try := 1; try <= 2; try++ {
		res, err := s.createRuns(ctx, ins, now)
		if err != nil {
			t.Fatalf("try %d: %v", try, err)
		}
		for i, r := range res {
			if r.Err != nil || !r.Created || r.Run == nil || r.Run.ID != ins[i].ID {
				t.Fatalf("try %d, run %d: %+v; want its own run, created", try, i, r)
			}
		}
	}
	for _, in := range ins {
		events, err := s.FindRunEvents(ctx, in.ID)
		if err != nil || len(events) != 1 || events[0].Kind != rules.EventCreated {
			t.Fatalf("run %s has events %v (%v), want one created", in.ID, events, err)
		}
	}
}
