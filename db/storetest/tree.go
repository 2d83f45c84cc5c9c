package storetest

import (
	"context"
	"testing"

	"github.com/orcheo/orcheo"
)

// exerciseTree covers what bounds workflows that start each other and what
// keeps a public webhook away from other runs: idempotency keys scoped to a
// trigger, and a child run's place in its tree.
func exerciseTree(t *testing.T, backend Backend) {
	ctx := context.Background()

	// A webhook delivery carrying the key of a manual run must neither
	// find that run (and so read its input) nor be taken as its repeat.
	t.Run("IdempotencyKeyPerTrigger", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		manual := MustRun(t, s, wf, func(r *orcheo.Run) {
			r.IdempotencyKey = "k1"
			r.Input = []byte(`{"secret":"s3cr3t"}`)
		})
		hook := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerWebhook, IdempotencyKey: "k1"}
		got, created, err := s.Runs.CreateRun(ctx, hook)
		if err != nil || !created || got.ID == manual.ID {
			t.Fatalf("webhook run with a manual run's key: created=%v, err=%v, same run=%v", created, err, got != nil && got.ID == manual.ID)
		}
		// Within one trigger the key still dedupes.
		again, created, err := s.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerWebhook, IdempotencyKey: "k1"})
		if err != nil || created || again.ID != got.ID {
			t.Fatalf("repeated webhook key: created=%v, err=%v, run %v want %s", created, err, again, got.ID)
		}
		again, created, err = s.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerManual, IdempotencyKey: "k1"})
		if err != nil || created || again.ID != manual.ID {
			t.Fatalf("repeated manual key: created=%v, err=%v, run %v want %s", created, err, again, manual.ID)
		}
	})

	t.Run("ChildRunTree", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		root := MustRun(t, s, wf)
		if root.ParentRunID != "" || root.RootRunID != "" || root.Depth != 0 {
			t.Fatalf("root run = parent %q root %q depth %d", root.ParentRunID, root.RootRunID, root.Depth)
		}
		child := func(parent *orcheo.Run, key string) *orcheo.Run {
			t.Helper()
			rootID := parent.RootRunID
			if rootID == "" {
				rootID = parent.ID
			}
			r := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerWorkflow,
				IdempotencyKey: key, ParentRunID: parent.ID, RootRunID: rootID, Depth: parent.Depth + 1}
			got, created, err := s.Runs.CreateRun(ctx, r)
			if err != nil || !created {
				t.Fatalf("create child %s: created=%v, %v", key, created, err)
			}
			return got
		}
		a := child(root, "a")
		b := child(root, "b")
		a1 := child(a, "a1")
		found, err := s.Runs.FindRunByID(ctx, a1.ID)
		if err != nil || found.ParentRunID != a.ID || found.RootRunID != root.ID || found.Depth != 2 {
			t.Fatalf("grandchild = %+v, %v", found, err)
		}
		for _, tc := range []struct {
			parent, except         string
			wantChildren, wantTree int
		}{
			{root.ID, "", 2, 3},
			{root.ID, "a", 1, 2}, // the child a repeated start finds again is left out
			{a.ID, "", 1, 3},
			{b.ID, "", 0, 3},
		} {
			children, tree, err := s.Runs.CountChildRuns(ctx, tc.parent, root.ID, tc.except)
			if err != nil || children != tc.wantChildren || tree != tc.wantTree {
				t.Errorf("CountChildRuns(%s, except %q) = %d, %d, %v; want %d, %d", tc.parent, tc.except, children, tree, err, tc.wantChildren, tc.wantTree)
			}
		}
		// A child must name its parent and root; a root run names neither.
		for _, bad := range []*orcheo.Run{
			{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerWorkflow, ParentRunID: root.ID, Depth: 1},
			{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerManual, Depth: 3},
			{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerWorkflow, ParentRunID: "x", RootRunID: root.ID, Depth: 1},
		} {
			if _, _, err := s.Runs.CreateRun(ctx, bad); orcheo.ErrorCode(err) != orcheo.EINVALID {
				t.Errorf("CreateRun(parent %q root %q depth %d) err = %v, want EINVALID", bad.ParentRunID, bad.RootRunID, bad.Depth, err)
			}
		}
	})
}
