package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

func exerciseWorkflows(t *testing.T, backend Backend) {
	ctx := context.Background()

	t.Run("CreateAndFind", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		// A clock in a non-UTC zone: the store must hand back UTC.
		clock := &fixedClock{t: time.Date(2025, 3, 30, 2, 30, 0, 123456789, time.FixedZone("X", 5*3600))}
		s.SetNow(clock.Now)

		wf := &orcheo.Workflow{Handle: uniqueHandle("create"), Name: "Create"}
		v1, err := s.Workflows.CreateWorkflow(ctx, wf, definition)
		if err != nil {
			t.Fatal(err)
		}
		want := clock.Now().UTC().Truncate(time.Microsecond)
		if !orcheo.IsID(wf.ID) || wf.Queue != orcheo.DefaultQueue || !wf.CreatedAt.Equal(want) {
			t.Fatalf("created workflow = %+v", wf)
		}
		if v1.Version != 1 || wf.LatestVersion != 1 || wf.LatestVersionID != v1.ID || v1.WorkflowID != wf.ID {
			t.Fatalf("version 1 = %+v, workflow = %+v", v1, wf)
		}

		for _, ref := range []string{wf.ID, wf.Handle} {
			got, err := s.Workflows.FindWorkflowByRef(ctx, ref)
			if err != nil {
				t.Fatalf("find %q: %v", ref, err)
			}
			if got.ID != wf.ID || got.Handle != wf.Handle || got.Name != "Create" || got.Queue != orcheo.DefaultQueue ||
				got.LatestVersion != 1 || got.LatestVersionID != v1.ID || got.ArchivedAt != nil {
				t.Fatalf("find %q = %+v", ref, got)
			}
			if got.CreatedAt != want || got.CreatedAt.Location() != time.UTC {
				t.Fatalf("created_at = %v, want %v in UTC", got.CreatedAt, want)
			}
		}

		clock.Advance(time.Second)
		v2, err := s.Workflows.CreateWorkflowVersion(ctx, wf.ID, json.RawMessage(`{"nodes":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		if v2.Version != 2 || v2.WorkflowID != wf.ID {
			t.Fatalf("version 2 = %+v", v2)
		}
		got, err := s.Workflows.FindWorkflowByRef(ctx, wf.Handle)
		if err != nil {
			t.Fatal(err)
		}
		if got.LatestVersion != 2 || got.LatestVersionID != v2.ID {
			t.Fatalf("latest = %d %s, want 2 %s", got.LatestVersion, got.LatestVersionID, v2.ID)
		}

		versions, err := s.Workflows.FindWorkflowVersions(ctx, wf.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(versions) != 2 || versions[0].ID != v1.ID || versions[1].ID != v2.ID {
			t.Fatalf("versions = %+v", versions)
		}
		if !jsonEqual(t, versions[0].Definition, definition) {
			t.Fatalf("definition = %s, want %s", versions[0].Definition, definition)
		}

		byID, err := s.Workflows.FindWorkflowVersionByID(ctx, v2.ID)
		if err != nil {
			t.Fatal(err)
		}
		if byID.Version != 2 || !jsonEqual(t, byID.Definition, json.RawMessage(`{"nodes":[]}`)) ||
			!byID.CreatedAt.Equal(want.Add(time.Second)) {
			t.Fatalf("version by id = %+v", byID)
		}
	})

	t.Run("ConcurrentVersions", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		const n = 10
		errs := make(chan error, n)
		for range n {
			go func() {
				_, err := s.Workflows.CreateWorkflowVersion(ctx, wf.ID, definition)
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		versions, err := s.Workflows.FindWorkflowVersions(ctx, wf.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range versions {
			if v.Version != i+1 {
				t.Fatalf("versions[%d].Version = %d; numbering must be gapless", i, v.Version)
			}
		}
		if len(versions) != n+1 {
			t.Fatalf("%d versions, want %d", len(versions), n+1)
		}
	})

	t.Run("ErrConflictHandle", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		_, err := s.Workflows.CreateWorkflow(ctx, &orcheo.Workflow{Handle: wf.Handle}, definition)
		wantCode(t, err, orcheo.ECONFLICT)
		wantMessageContains(t, err, wf.Handle)
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		_, err := s.Workflows.CreateWorkflow(ctx, &orcheo.Workflow{Handle: "Bad Handle"}, definition)
		wantCode(t, err, orcheo.EINVALID)
		_, err = s.Workflows.CreateWorkflow(ctx, &orcheo.Workflow{Handle: uniqueHandle("inv")}, json.RawMessage(`{nope`))
		wantCode(t, err, orcheo.EINVALID)
		wf, _ := MustWorkflow(t, s)
		_, err = s.Workflows.CreateWorkflowVersion(ctx, wf.ID, nil)
		wantCode(t, err, orcheo.EINVALID)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		_, err := s.Workflows.FindWorkflowByRef(ctx, "no-such-handle")
		wantCode(t, err, orcheo.ENOTFOUND)
		wantMessageContains(t, err, "no-such-handle")
		missing := orcheo.NewID()
		_, err = s.Workflows.FindWorkflowByRef(ctx, missing)
		wantCode(t, err, orcheo.ENOTFOUND)
		wantMessageContains(t, err, missing)
		_, err = s.Workflows.CreateWorkflowVersion(ctx, missing, definition)
		wantCode(t, err, orcheo.ENOTFOUND)
		_, err = s.Workflows.FindWorkflowVersionByID(ctx, missing)
		wantCode(t, err, orcheo.ENOTFOUND)
		_, err = s.Workflows.FindWorkflowVersionByID(ctx, "not-an-id")
		wantCode(t, err, orcheo.ENOTFOUND)
		_, err = s.Workflows.ArchiveWorkflow(ctx, missing)
		wantCode(t, err, orcheo.ENOTFOUND)
		versions, err := s.Workflows.FindWorkflowVersions(ctx, missing)
		if err != nil || len(versions) != 0 {
			t.Fatalf("versions of a missing workflow = %v, %v; want none", versions, err)
		}
	})

	t.Run("Archive", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		wf, _ := MustWorkflow(t, s)
		got, err := s.Workflows.ArchiveWorkflow(ctx, wf.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Archived() || got.LatestVersion != 1 {
			t.Fatalf("archived workflow = %+v", got)
		}
		first := *got.ArchivedAt
		clock.Advance(time.Hour)
		again, err := s.Workflows.ArchiveWorkflow(ctx, wf.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !again.ArchivedAt.Equal(first) {
			t.Fatalf("second archive moved archived_at from %v to %v", first, again.ArchivedAt)
		}
		_, err = s.Workflows.CreateWorkflowVersion(ctx, wf.ID, definition)
		wantCode(t, err, orcheo.ECONFLICT)
		if found, err := s.Workflows.FindWorkflowByRef(ctx, wf.Handle); err != nil || !found.Archived() {
			t.Fatalf("find archived = %+v, %v", found, err)
		}
		h := wf.Handle
		list, n, err := s.Workflows.FindWorkflows(ctx, orcheo.WorkflowFilter{Handle: &h})
		if err != nil || n != 0 || len(list) != 0 {
			t.Fatalf("archived workflow listed without IncludeArchived: %v %d %v", list, n, err)
		}
		list, n, err = s.Workflows.FindWorkflows(ctx, orcheo.WorkflowFilter{Handle: &h, IncludeArchived: true})
		if err != nil || n != 1 || len(list) != 1 || list[0].ID != wf.ID {
			t.Fatalf("IncludeArchived: %v %d %v", list, n, err)
		}
	})

	t.Run("FindWorkflows", func(t *testing.T) {
		t.Parallel()
		s := openFresh(t, backend)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		var ids []string
		for range 5 {
			wf, _ := MustWorkflow(t, s)
			ids = append(ids, wf.ID)
			clock.Advance(time.Second)
		}
		if _, err := s.Workflows.CreateWorkflowVersion(ctx, ids[0], definition); err != nil {
			t.Fatal(err)
		}
		list, n, err := s.Workflows.FindWorkflows(ctx, orcheo.WorkflowFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if n != 5 || len(list) != 5 {
			t.Fatalf("got %d of %d workflows, want 5 of 5", len(list), n)
		}
		for i, w := range list {
			if w.ID != ids[4-i] {
				t.Fatalf("list[%d] = %s, want %s (newest first)", i, w.ID, ids[4-i])
			}
		}
		if list[4].LatestVersion != 2 || list[0].LatestVersion != 1 {
			t.Fatalf("latest versions %d and %d, want 2 and 1", list[4].LatestVersion, list[0].LatestVersion)
		}
		page, n, err := s.Workflows.FindWorkflows(ctx, orcheo.WorkflowFilter{Offset: 1, Limit: 2})
		if err != nil || n != 5 || len(page) != 2 || page[0].ID != ids[3] || page[1].ID != ids[2] {
			t.Fatalf("page = %v, total %d, err %v", page, n, err)
		}
		past, n, err := s.Workflows.FindWorkflows(ctx, orcheo.WorkflowFilter{Offset: 10})
		if err != nil || n != 5 || len(past) != 0 {
			t.Fatalf("past the end: %v, total %d, err %v", past, n, err)
		}
	})
}
