package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/server"
)

// fakeWorkers is the registry the handlers read; what it is about (Redis)
// is tested in tasks/ and test/inspect_test.go.
type fakeWorkers struct {
	workers  []*orcheo.WorkerInfo
	delayed  []orcheo.DelayedMessage
	queues   []string // what Delayed was asked for
	shutdown [][]string
}

func (f *fakeWorkers) Workers(ctx context.Context) ([]*orcheo.WorkerInfo, error) {
	return f.workers, nil
}

func (f *fakeWorkers) Delayed(ctx context.Context, queues []string, limit int) ([]orcheo.DelayedMessage, error) {
	f.queues = queues
	return f.delayed[:min(limit, len(f.delayed))], nil
}

func (f *fakeWorkers) Shutdown(ctx context.Context, names []string) ([]string, error) {
	f.shutdown = append(f.shutdown, names)
	for _, n := range names {
		if n != "w1" {
			return nil, orcheo.Errorf(orcheo.ENOTFOUND, "no worker named %q is online", n)
		}
	}
	if len(names) == 0 {
		return []string{"w1", "w2"}, nil
	}
	return names, nil
}

func TestWorkerRoutes_Unconfigured(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	_, err := e.client.Workers(ctx)
	wantCode(t, err, orcheo.EUNAVAILABLE)
	_, err = e.client.Scheduled(ctx, 0)
	wantCode(t, err, orcheo.EUNAVAILABLE)
	_, err = e.client.Shutdown(ctx, nil)
	wantCode(t, err, orcheo.EUNAVAILABLE)
}

func TestWorkerRoutes_ListAndShutdown(t *testing.T) {
	since := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	fw := &fakeWorkers{workers: []*orcheo.WorkerInfo{{
		Name: "w1", ID: "h-1-ab", Host: "h", PID: 1, State: orcheo.WorkerOnline, Queues: []string{"default"}, Concurrency: 2,
		Active:   []orcheo.ActiveRun{{RunID: "r1", WorkflowID: "wf", Queue: "default", Attempt: 1, Since: since}},
		Reserved: []orcheo.ReservedMessage{}, StartedAt: since, LastHeartbeat: since,
		Stats: orcheo.WorkerStats{Processed: 3, Failed: 1, Retried: 1, Pool: 2},
	}}}
	e := newEnv(t, envOptions{setup: func(s *server.Server, _ *db.Store) { s.Workers = fw }})
	ctx := context.Background()

	ws, err := e.client.Workers(ctx)
	if err != nil || len(ws) != 1 || !reflect.DeepEqual(ws[0], fw.workers[0]) {
		t.Fatalf("workers = %+v, err %v", ws, err)
	}
	// The JSON names, which the UI and scripts read.
	resp := e.get(t, "/api/workers")
	var raw map[string][]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, k := range []string{"name", "id", "host", "pid", "state", "queues", "concurrency", "active", "reserved", "started_at", "last_heartbeat", "stats"} {
		if _, ok := raw["workers"][0][k]; !ok {
			t.Errorf("a worker has no %q", k)
		}
	}

	told, err := e.client.Shutdown(ctx, []string{"w1"})
	if err != nil || !reflect.DeepEqual(told, []string{"w1"}) {
		t.Fatalf("shutdown w1: %v, %v", told, err)
	}
	told, err = e.client.Shutdown(ctx, nil)
	if err != nil || !reflect.DeepEqual(told, []string{"w1", "w2"}) || len(fw.shutdown[1]) != 0 {
		t.Fatalf("shutdown of all: %v, %v (asked %v)", told, err, fw.shutdown)
	}
	_, err = e.client.Shutdown(ctx, []string{"w1", "gone"})
	wantCode(t, err, orcheo.ENOTFOUND)
	// A name that could never be a worker's is refused before the registry.
	asked := len(fw.shutdown)
	for _, bad := range []string{"a:b", "{x}", "a b", strings.Repeat("x", 129)} {
		_, err = e.client.Shutdown(ctx, []string{bad})
		wantCode(t, err, orcheo.EINVALID)
	}
	if len(fw.shutdown) != asked {
		t.Fatal("an invalid name reached the registry")
	}
}

// TestInspectScheduled_KindsFromTheStore: each delayed message is told
// apart by its run in the store: a retry and a suspended run are due at
// their not_before, another pending run at its message's time, and a
// message whose run is no longer pending (or gone) is left out.
func TestInspectScheduled_KindsFromTheStore(t *testing.T) {
	fw := &fakeWorkers{}
	e := newEnv(t, envOptions{setup: func(s *server.Server, _ *db.Store) { s.Workers, s.WorkerQueues = fw, []string{"default", "mail"} }})
	ctx := context.Background()
	wf := e.mustWorkflow(t, "sched")
	st := e.store.Runs
	newRun := func() *orcheo.Run {
		t.Helper()
		run, _, err := st.CreateRun(ctx, &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID,
			TriggeredBy: orcheo.TriggerManual, Input: json.RawMessage(`{}`), MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	claim := func(run *orcheo.Run) {
		t.Helper()
		if _, err := st.ClaimRun(ctx, run.ID, "w1", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	retryAt := time.Now().Add(10 * time.Minute).UTC().Truncate(time.Millisecond)
	retried := newRun()
	claim(retried)
	if _, err := st.CompleteRun(ctx, retried.ID, 1, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "boom", RetryAt: &retryAt}); err != nil {
		t.Fatal(err)
	}
	parkedUntil := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	parked := newRun()
	claim(parked)
	if err := st.SaveRunStep(ctx, &orcheo.RunStep{RunID: parked.ID, Attempt: 1, Seq: 1, Node: "wait", NodeType: "delay",
		Status: orcheo.StepWaiting, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SuspendRun(ctx, parked.ID, 1, parkedUntil, json.RawMessage(`{"state":{}}`)); err != nil {
		t.Fatal(err)
	}
	plain := newRun()
	done := newRun()
	claim(done)
	if _, err := st.CompleteRun(ctx, done.ID, 1, orcheo.RunCompletion{Status: orcheo.RunSucceeded}); err != nil {
		t.Fatal(err)
	}
	msgAt := time.Now().Add(5 * time.Second).UTC().Truncate(time.Millisecond)
	fw.delayed = []orcheo.DelayedMessage{
		{RunID: plain.ID, Queue: "default", DueAt: msgAt},
		{RunID: done.ID, Queue: "default", DueAt: msgAt},
		{RunID: "0190a000-0000-7000-8000-00000000dead", Queue: "default", DueAt: msgAt},
		{RunID: retried.ID, Queue: "default", DueAt: retryAt},
		{RunID: retried.ID, Queue: "default", DueAt: retryAt}, // a duplicate message: one row
		{RunID: parked.ID, Queue: "default", DueAt: parkedUntil.Add(time.Second)},
	}
	got, err := e.client.Scheduled(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []*orcheo.ScheduledRun{
		{RunID: plain.ID, WorkflowID: wf.ID, Queue: "default", Kind: orcheo.ScheduledDelayed, Attempt: 0, DueAt: msgAt},
		{RunID: retried.ID, WorkflowID: wf.ID, Queue: "default", Kind: orcheo.ScheduledRetry, Attempt: 1, DueAt: retryAt},
		{RunID: parked.ID, WorkflowID: wf.ID, Queue: "default", Kind: orcheo.ScheduledSuspended, Attempt: 1, DueAt: parkedUntil},
	}
	if len(got) != len(want) {
		t.Fatalf("scheduled = %s, want %d rows", mustMarshal(t, got), len(want))
	}
	for i := range want {
		if !got[i].DueAt.Equal(want[i].DueAt) {
			t.Fatalf("row %d due %v, want %v", i, got[i].DueAt, want[i].DueAt)
		}
		got[i].DueAt = want[i].DueAt
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("row %d = %s, want %s", i, mustMarshal(t, got[i]), mustMarshal(t, want[i]))
		}
	}
	if !reflect.DeepEqual(fw.queues, []string{"default", "mail"}) {
		t.Fatalf("Delayed asked for %v, want the configured queues", fw.queues)
	}
	for _, bad := range []string{"0", "1001", "x"} {
		resp := e.get(t, "/api/inspect/scheduled?limit="+bad)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("limit=%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// get sends GET path with the admin token.
func (e *env) get(t *testing.T, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
