package main

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/promtext"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/mock"
	"github.com/orcheo/orcheo/server"
)

// finishRuns stores n runs of a new workflow in store, finished with
// status at the store's clock.
func finishRuns(t *testing.T, store *db.Store, n int, status orcheo.RunStatus) []*orcheo.Run {
	t.Helper()
	ctx := context.Background()
	wf := &orcheo.Workflow{Handle: "purge-" + strings.ToLower(orcheo.NewID()[24:])}
	if _, err := store.Workflows.CreateWorkflow(ctx, wf, json.RawMessage(`{"nodes":[{"id":"a","type":"log"}]}`)); err != nil {
		t.Fatal(err)
	}
	var runs []*orcheo.Run
	for range n {
		run, _, err := store.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID,
			TriggeredBy: orcheo.TriggerManual, Input: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		c, err := store.Runs.ClaimRun(ctx, run.ID, "w", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Runs.CompleteRun(ctx, run.ID, c.Attempt, orcheo.RunCompletion{Status: status}); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	return runs
}

// TestRunsPurge runs orcheo runs purge against a live API on a SQLite
// store holding runs finished ten days ago and now.
func TestRunsPurge(t *testing.T) {
	t.Parallel()
	store, err := db.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "orcheo.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	store.SetNow(func() time.Time { return time.Now().Add(-10 * 24 * time.Hour) })
	old := finishRuns(t, store, 2, orcheo.RunSucceeded)
	oldFailed := finishRuns(t, store, 1, orcheo.RunFailed)
	store.SetNow(time.Now)
	recent := finishRuns(t, store, 1, orcheo.RunSucceeded)

	log := logrus.New()
	log.SetOutput(io.Discard)
	s := server.NewServer()
	s.Workflows, s.Runs, s.Triggers = store.Workflows, store.Runs, store.Triggers
	s.Submitter, s.Engine = &mock.RunSubmitter{}, engine.New(engine.Options{})
	s.Token, s.Addr, s.Logger = "purge-test-token", "127.0.0.1:0", log
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	b := &cliBundle{url: s.URL(), token: s.Token}
	exists := func(id string) bool {
		_, err := store.Runs.FindRunByID(context.Background(), id)
		return err == nil
	}

	out, _, err := b.run(t, "", "runs", "purge", "--older-than", "7d", "--dry-run")
	if err != nil || !strings.HasPrefix(out, "would delete 3 of all finished runs that finished before ") {
		t.Fatalf("dry run = %q, %v", out, err)
	}
	if !exists(old[0].ID) || !exists(oldFailed[0].ID) {
		t.Fatal("the dry run deleted runs")
	}
	out, _, err = b.run(t, "", "runs", "purge", "--older-than", "7d", "--status", "failed", "--json")
	var res struct {
		Count  int  `json:"count"`
		DryRun bool `json:"dry_run"`
	}
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Count != 1 || res.DryRun || exists(oldFailed[0].ID) {
		t.Fatalf("purge of failed runs = %q, %v", out, err)
	}
	out, _, err = b.run(t, "", "runs", "purge", "--older-than", "168h")
	if err != nil || !strings.HasPrefix(out, "deleted 2 of all finished runs") || exists(old[0].ID) || exists(old[1].ID) {
		t.Fatalf("purge = %q, %v", out, err)
	}
	if !exists(recent[0].ID) {
		t.Fatal("the run that finished now was purged")
	}
	for _, args := range [][]string{
		{"runs", "purge"},
		{"runs", "purge", "--older-than", "7d", "--status", "running"},
		{"runs", "purge", "--older-than", "7d", "--status", "pending,failed"},
		{"runs", "purge", "--older-than", "soon"},
	} {
		if _, _, err := b.run(t, "", args...); orcheo.ErrorCode(err) != orcheo.EINVALID {
			t.Fatalf("%v = %v, want EINVALID", args, err)
		}
	}
	if !exists(recent[0].ID) {
		t.Fatal("a refused purge deleted a run")
	}
}

// TestWorkerMain_Retention: the worker that leads the rescue deletes runs
// finished longer than ORCHEO_RUN_RETENTION ago as soon as it leads, and
// its /metrics counts them.
func TestWorkerMain_Retention(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	cfg := mainConfig(t, "cmd_worker_retention", rs.URL())
	cfg.WorkerMetricsAddr = freeAddr(t)
	cfg.RunRetention = time.Hour
	store, err := db.Open(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	store.SetNow(func() time.Time { return time.Now().Add(-2 * time.Hour) })
	old := finishRuns(t, store, 3, orcheo.RunSucceeded)
	store.SetNow(time.Now)
	kept := finishRuns(t, store, 1, orcheo.RunFailed)

	m := &workerMain{cfg: cfg, log: quietLogger(t)}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	eventually(t, "orcheo_retention_deleted_runs_total 3", func() (bool, string) {
		_, body, err := promtext.Get("http://"+cfg.WorkerMetricsAddr+"/metrics", "")
		if err != nil {
			return false, err.Error()
		}
		v, ok := promtext.Value(body, "orcheo_retention_deleted_runs_total")
		return ok && v == 3, body
	})
	for _, r := range old {
		if _, err := store.Runs.FindRunByID(context.Background(), r.ID); orcheo.ErrorCode(err) != orcheo.ENOTFOUND {
			t.Fatalf("old run %s: %v, want it deleted", r.ID, err)
		}
	}
	if _, err := store.Runs.FindRunByID(context.Background(), kept[0].ID); err != nil {
		t.Fatalf("recent run: %v", err)
	}
}

func TestConfig_RunRetention(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]time.Duration{"": 30 * 24 * time.Hour, "0": 0, "7d": 7 * 24 * time.Hour, "12h": 12 * time.Hour} {
		cfg, err := ConfigFromEnv(func(k string) string { return map[string]string{"ORCHEO_RUN_RETENTION": v}[k] })
		if err != nil || cfg.RunRetention != want {
			t.Errorf("ORCHEO_RUN_RETENTION=%q: %s, %v; want %s", v, cfg.RunRetention, err, want)
		}
	}
	for _, v := range []string{"-1h", "0d", "7 days", "1.5d", "x"} {
		if _, err := ConfigFromEnv(func(k string) string { return map[string]string{"ORCHEO_RUN_RETENTION": v}[k] }); err == nil ||
			!strings.Contains(err.Error(), "ORCHEO_RUN_RETENTION") {
			t.Errorf("ORCHEO_RUN_RETENTION=%q: err %v, want one naming the variable", v, err)
		}
	}
}
