package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/server"
)

// finishedRun stores a run of wf finished (status) at the store's clock.
func finishedRun(tb testing.TB, st *db.Store, wf *orcheo.Workflow, status orcheo.RunStatus) *orcheo.Run {
	tb.Helper()
	ctx := context.Background()
	run, _, err := st.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID,
		TriggeredBy: orcheo.TriggerManual, Input: json.RawMessage(`{}`)})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := st.Runs.ClaimRun(ctx, run.ID, "w", time.Now().Add(time.Minute))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := st.Runs.CompleteRun(ctx, run.ID, c.Attempt, orcheo.RunCompletion{Status: status}); err != nil {
		tb.Fatal(err)
	}
	return run
}

func TestRunPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	wf := e.mustWorkflow(t, "purged")
	e.store.SetNow(func() time.Time { return time.Now().Add(-10 * 24 * time.Hour) })
	oldOK := finishedRun(t, e.store, wf, orcheo.RunSucceeded)
	oldFailed := finishedRun(t, e.store, wf, orcheo.RunFailed)
	e.store.SetNow(time.Now)
	recent := finishedRun(t, e.store, wf, orcheo.RunSucceeded)

	t.Run("DryRun", func(t *testing.T) {
		res, err := e.client.PurgeRuns(ctx, client.RunPurge{OlderThan: "7d", DryRun: true})
		if err != nil || res.Count != 2 || !res.DryRun || res.More {
			t.Fatalf("dry run = %+v, %v; want a count of 2", res, err)
		}
		if _, err := e.client.FindRunByID(ctx, oldOK.ID); err != nil {
			t.Fatalf("the dry run deleted a run: %v", err)
		}
	})
	t.Run("Statuses", func(t *testing.T) {
		res, err := e.client.PurgeRuns(ctx, client.RunPurge{OlderThan: "7d", Statuses: []orcheo.RunStatus{orcheo.RunFailed}})
		if err != nil || res.Count != 1 || res.More {
			t.Fatalf("purge of failed runs = %+v, %v; want 1", res, err)
		}
		_, err = e.client.FindRunByID(ctx, oldFailed.ID)
		wantCode(t, err, orcheo.ENOTFOUND)
	})
	t.Run("OK", func(t *testing.T) {
		res, err := e.client.PurgeRuns(ctx, client.RunPurge{OlderThan: "168h"})
		if err != nil || res.Count != 1 {
			t.Fatalf("purge = %+v, %v; want the old succeeded run", res, err)
		}
		if d := time.Since(res.Before) - 7*24*time.Hour; d < 0 || d > time.Minute {
			t.Fatalf("before = %s, want 7 days ago", res.Before)
		}
		_, err = e.client.FindRunByID(ctx, oldOK.ID)
		wantCode(t, err, orcheo.ENOTFOUND)
		if _, err := e.client.FindRunByID(ctx, recent.ID); err != nil {
			t.Fatalf("recent run: %v", err)
		}
	})
	t.Run("EINVALID", func(t *testing.T) {
		for _, p := range []client.RunPurge{
			{},
			{OlderThan: "0"},
			{OlderThan: "-1h"},
			{OlderThan: "soon"},
			{OlderThan: "7d", Statuses: []orcheo.RunStatus{orcheo.RunRunning}},
			{OlderThan: "7d", Statuses: []orcheo.RunStatus{orcheo.RunPending}},
			{OlderThan: "7d", Statuses: []orcheo.RunStatus{"gone"}},
		} {
			_, err := e.client.PurgeRuns(ctx, p)
			wantCode(t, err, orcheo.EINVALID)
		}
		if _, err := e.client.FindRunByID(ctx, recent.ID); err != nil {
			t.Fatalf("a refused purge deleted: %v", err)
		}
	})
}

// TestRunPurge_AdminOnly: a read token may not purge.
func TestRunPurge_AdminOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{setup: func(s *server.Server, _ *db.Store) {
		tokens, err := server.NewTokens([]server.APIToken{{Name: "reader", Scope: server.ScopeRead, Value: "reader-token-0123456789"}})
		if err != nil {
			t.Fatal(err)
		}
		s.Tokens = tokens
	}})
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/api/runs/purge", strings.NewReader(`{"older_than":"7d"}`))
	req.Header.Set("Authorization", "Bearer reader-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("purge with a read token = %d, want 403", resp.StatusCode)
	}
}
