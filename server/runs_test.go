package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
)

func TestRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("Start", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		wf, err := e.client.CreateWorkflow(ctx, "start", "", "mail", []byte(okDefinition))
		if err != nil {
			t.Fatal(err)
		}
		run, err := e.client.StartRun(ctx, "start", json.RawMessage(`{"to":"ann"}`), "")
		if err != nil {
			t.Fatal(err)
		}
		if !orcheo.IsID(run.ID) || run.WorkflowID != wf.ID || run.VersionID != wf.LatestVersionID || run.Queue != "mail" ||
			run.Status != orcheo.RunPending || run.TriggeredBy != orcheo.TriggerManual || run.EnqueuedAt == nil {
			t.Fatalf("run %+v", run)
		}
		var input map[string]string
		if err := json.Unmarshal(run.Input, &input); err != nil || input["to"] != "ann" {
			t.Fatalf("input %s", run.Input)
		}
		if ids := e.queue.enqueued(); len(ids) != 1 || ids[0] != run.ID {
			t.Fatalf("enqueued %v", ids)
		}
		got, err := e.client.FindRunByID(ctx, run.ID)
		if err != nil || got.ID != run.ID || got.Status != orcheo.RunPending {
			t.Fatalf("find %+v %v", got, err)
		}
	})

	t.Run("Status202", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "empty")
		// An empty body means input {}.
		resp, body := do(t, e, "POST", "/api/workflows/empty/runs", testToken, "", "")
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		var run orcheo.Run
		if err := json.Unmarshal([]byte(body), &run); err != nil || string(run.Input) != `{}` {
			t.Fatalf("run %s (%v)", body, err)
		}
	})

	t.Run("Idempotency", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "idem")
		first, err := e.client.StartRun(ctx, "idem", nil, "order-42")
		if err != nil {
			t.Fatal(err)
		}
		_, runs := e.counts(t)
		// Same key, by header (client) and by body field: the first run, 200.
		again, err := e.client.StartRun(ctx, "idem", json.RawMessage(`{"other":true}`), "order-42")
		if err != nil || again.ID != first.ID {
			t.Fatalf("again %+v %v", again, err)
		}
		resp, body := do(t, e, "POST", "/api/workflows/idem/runs", testToken, "application/json", `{"idempotency_key":"order-42"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("repeat status %d: %s", resp.StatusCode, body)
		}
		var rerun orcheo.Run
		if err := json.Unmarshal([]byte(body), &rerun); err != nil || rerun.ID != first.ID {
			t.Fatalf("repeat %s", body)
		}
		if len(e.queue.enqueued()) != 1 {
			t.Fatalf("enqueued %v, want only the first run", e.queue.enqueued())
		}
		e.unchanged(t, 1, runs)
		req, _ := http.NewRequest("POST", e.http.URL+"/api/workflows/idem/runs", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Idempotency-Key", "a")
		req.Body = http.NoBody
		resp2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp2.Body.Close()
		if resp2.StatusCode != http.StatusAccepted {
			t.Fatalf("new key: status %d", resp2.StatusCode)
		}
	})

	t.Run("EnqueueFails", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{failQueue: true})
		e.mustWorkflow(t, "down")
		run, err := e.client.StartRun(ctx, "down", nil, "")
		if err != nil {
			t.Fatalf("a failed enqueue must still answer 202: %v", err)
		}
		if run.EnqueuedAt != nil {
			t.Fatalf("enqueued_at %v reported for a run that was not enqueued", run.EnqueuedAt)
		}
		// The requeuer's query finds it.
		ids, err := e.store.Runs.ClaimUnenqueuedRuns(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0].ID != run.ID {
			t.Fatalf("unenqueued runs %+v, want %s", ids, run.ID)
		}
	})

	t.Run("Archived", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "old")
		if _, err := e.client.ArchiveWorkflow(ctx, "old"); err != nil {
			t.Fatal(err)
		}
		_, err := e.client.StartRun(ctx, "old", nil, "")
		wantCode(t, err, orcheo.ECONFLICT)
		e.unchanged(t, 1, 0)
	})

	t.Run("BadInput", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{maxBody: 1024})
		e.mustWorkflow(t, "bad")
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			code                     string
		}{
			{"UnknownWorkflow", "POST", "/api/workflows/nope/runs", `{}`, 404, orcheo.ENOTFOUND},
			{"MalformedJSON", "POST", "/api/workflows/bad/runs", `{"input":`, 400, orcheo.EINVALID},
			{"UnknownField", "POST", "/api/workflows/bad/runs", `{"inputs":{}}`, 400, orcheo.EINVALID},
			{"LongKey", "POST", "/api/workflows/bad/runs", `{"idempotency_key":"` + longString(300) + `"}`, 400, orcheo.EINVALID},
			{"TooLarge", "POST", "/api/workflows/bad/runs", `{"input":"` + longString(2000) + `"}`, 413, orcheo.ETOOLARGE},
			{"WrongMethod", "GET", "/api/workflows/bad/runs", ``, 405, orcheo.EMETHOD},
			{"CancelUnknown", "POST", "/api/runs/" + orcheo.NewID() + "/cancel", ``, 404, orcheo.ENOTFOUND},
			{"CancelMalformedID", "POST", "/api/runs/not-an-id/cancel", ``, 404, orcheo.ENOTFOUND},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := do(t, e, tc.method, tc.path, testToken, "application/json", tc.body)
				wantError(t, resp, body, tc.status, tc.code)
				e.unchanged(t, 1, 0)
			})
		}
		if n := len(e.queue.enqueued()); n != 0 {
			t.Fatalf("%d runs enqueued", n)
		}
	})

	t.Run("FindRunByID", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		_, err := e.client.FindRunByID(ctx, orcheo.NewID())
		wantCode(t, err, orcheo.ENOTFOUND)
		// Ids that could climb to another route stay one path segment.
		for _, id := range []string{"../workflows", "..", ".", "a%2F..%2F..%2Fworkflows"} {
			_, err = e.client.FindRunByID(ctx, id)
			wantCode(t, err, orcheo.ENOTFOUND)
		}
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		a := e.mustWorkflow(t, "a")
		e.mustWorkflow(t, "b")
		var aRuns []string
		for i := 0; i < 3; i++ {
			run, err := e.client.StartRun(ctx, "a", nil, "")
			if err != nil {
				t.Fatal(err)
			}
			aRuns = append(aRuns, run.ID)
		}
		if _, err := e.client.StartRun(ctx, "b", nil, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.CancelRun(ctx, aRuns[0]); err != nil {
			t.Fatal(err)
		}
		runs, total, err := e.client.FindRuns(ctx, "", "", 0)
		if err != nil || total != 4 || len(runs) != 4 {
			t.Fatalf("all: %d %d %v", total, len(runs), err)
		}
		for _, ref := range []string{"a", a.ID} {
			runs, total, err = e.client.FindRuns(ctx, ref, "pending", 0)
			if err != nil || total != 2 || len(runs) != 2 {
				t.Fatalf("a pending: %d %d %v", total, len(runs), err)
			}
			for _, r := range runs {
				if r.WorkflowID != a.ID || r.Status != orcheo.RunPending {
					t.Fatalf("run %+v", r)
				}
			}
		}
		page, err := e.client.ListRuns(ctx, client.RunQuery{Workflow: "a", Limit: 1})
		if err != nil || !page.HasMore || len(page.Runs) != 1 {
			t.Fatalf("limit 1: %+v %v", page, err)
		}
		runs, _, err = e.client.FindRuns(ctx, "a", "cancelled", 0)
		if err != nil || len(runs) != 1 || runs[0].ID != aRuns[0] {
			t.Fatalf("cancelled: %+v %v", runs, err)
		}
		runs, total, err = e.client.QueryRuns(ctx, client.RunQuery{Workflow: "a", Trigger: orcheo.TriggerManual})
		if err != nil || total != 3 || len(runs) != 3 {
			t.Fatalf("a manual: %d %d %v", total, len(runs), err)
		}
		if _, total, err = e.client.QueryRuns(ctx, client.RunQuery{Trigger: orcheo.TriggerCron}); err != nil || total != 0 {
			t.Fatalf("cron: %d %v", total, err)
		}
		_, _, err = e.client.QueryRuns(ctx, client.RunQuery{Trigger: "beat"})
		wantCode(t, err, orcheo.EINVALID)
		_, _, err = e.client.FindRuns(ctx, "nope", "", 0)
		wantCode(t, err, orcheo.ENOTFOUND)
		_, _, err = e.client.FindRuns(ctx, "", "done", 0)
		wantCode(t, err, orcheo.EINVALID)
		for _, q := range []string{"limit=abc", "limit=-5", "limit=5000", "offset=x"} {
			resp, body := do(t, e, "GET", "/api/runs?"+q, testToken, "", "")
			wantError(t, resp, body, 400, orcheo.EINVALID)
		}
		resp, body := do(t, e, "GET", "/api/runs?workflow=b&status=succeeded", testToken, "", "")
		if resp.StatusCode != 200 || body != "{\"runs\":[],\"has_more\":false}\n" {
			t.Fatalf("empty list: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "c")
		run, err := e.client.StartRun(ctx, "c", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.client.CancelRun(ctx, run.ID)
		if err != nil || got.Status != orcheo.RunCancelled {
			t.Fatalf("cancel %+v %v", got, err)
		}
		_, err = e.client.CancelRun(ctx, run.ID)
		wantCode(t, err, orcheo.ECONFLICT)
		// A cancelled run is terminal: WaitRun returns at once.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if done, err := e.client.WaitRun(wctx, run.ID, time.Millisecond); err != nil || done.Status != orcheo.RunCancelled {
			t.Fatalf("wait %+v %v", done, err)
		}
	})

	t.Run("WaitRunContextDone", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "w")
		run, err := e.client.StartRun(ctx, "w", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		cancel()
		last, err := e.client.WaitRun(wctx, run.ID, time.Millisecond)
		if err == nil || wctx.Err() == nil || (last != nil && last.Status.Terminal()) {
			t.Fatalf("wait on a done context: %+v %v", last, err)
		}
	})
}

func longString(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'k'
	}
	return string(b)
}

// TestPostgres runs the run-creation paths against PostgreSQL, the
// production store: manual and webhook runs, idempotency, a failed enqueue
// and a refused request that must store nothing.
func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{postgresDB: "server"})
	e.mustWorkflow(t, "pg")
	e.mustEnableWebhook(t, "pg")

	run, err := e.client.StartRun(ctx, "pg", json.RawMessage(`{"a":1}`), "k1")
	if err != nil || run.Status != orcheo.RunPending {
		t.Fatalf("start %+v %v", run, err)
	}
	if again, err := e.client.StartRun(ctx, "pg", nil, "k1"); err != nil || again.ID != run.ID {
		t.Fatalf("idempotent start %+v %v", again, err)
	}
	resp, body := webhook(t, e, "POST", "pg", "x=1", http.Header{"Content-Type": {"application/json"}, "Cookie": {"c=1"}}, `{"b":2}`)
	_, in := acceptedRun(t, e, resp, body)
	if string(in.Body) != `{"b":2}` || in.Query["x"] != "1" || in.Headers["cookie"] != "" {
		t.Fatalf("webhook input %+v", in)
	}
	resp, body = webhook(t, e, "POST", "pg", "", http.Header{"Content-Type": {"application/json"}}, `{`)
	wantError(t, resp, body, 400, orcheo.EINVALID)
	e.unchanged(t, 1, 2)

	e.queue.mu.Lock()
	e.queue.fail = true
	e.queue.mu.Unlock()
	lost, err := e.client.StartRun(ctx, "pg", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := e.store.Runs.ClaimUnenqueuedRuns(ctx, 10)
	if err != nil || len(ids) != 1 || ids[0].ID != lost.ID {
		t.Fatalf("unenqueued %+v %v", ids, err)
	}
	runs, total, err := e.client.FindRuns(ctx, "pg", "pending", 0)
	if err != nil || total != 3 || len(runs) != 3 {
		t.Fatalf("runs %d %d %v", total, len(runs), err)
	}
}
