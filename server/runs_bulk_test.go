package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
)

// mustFailedRun starts a run of ref and fails its first attempt in the
// store, as a worker would.
func (e *env) mustFailedRun(tb testing.TB, ref string) *orcheo.Run {
	tb.Helper()
	ctx := context.Background()
	run, err := e.client.StartRun(ctx, ref, nil, "")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := e.store.Runs.ClaimRun(ctx, run.ID, "w1", time.Now().Add(time.Minute)); err != nil {
		tb.Fatal(err)
	}
	done, err := e.store.Runs.CompleteRun(ctx, run.ID, 1, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "boom"})
	if err != nil || done.Status != orcheo.RunFailed {
		tb.Fatalf("fail run: %+v %v", done, err)
	}
	return done
}

func outcomes(res *client.RunBulkResult) map[string]string {
	m := map[string]string{}
	for _, r := range res.Runs {
		m[r.ID] = r.Outcome
	}
	return m
}

func TestRunBulk(t *testing.T) {
	ctx := context.Background()

	t.Run("Retry", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "r")
		e.mustWorkflow(t, "other")
		var failed []string
		for i := 0; i < 3; i++ {
			failed = append(failed, e.mustFailedRun(t, "r").ID)
		}
		otherFailed := e.mustFailedRun(t, "other")
		pending, err := e.client.StartRun(ctx, "r", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		published := len(e.queue.enqueued())

		// A dry run names each run and changes nothing.
		res, err := e.client.RetryRuns(ctx, client.RunBulk{Query: client.RunQuery{Workflow: "r"}, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		got := outcomes(res)
		if len(got) != 4 || got[pending.ID] != "refused" || res.More || !res.DryRun {
			t.Fatalf("dry run = %+v", res)
		}
		for _, id := range failed {
			if got[id] != "would_retry" {
				t.Fatalf("dry run: %s is %q", id, got[id])
			}
			if run, _ := e.store.Runs.FindRunByID(ctx, id); run.Status != orcheo.RunFailed {
				t.Fatalf("dry run changed run %s to %s", id, run.Status)
			}
		}
		if n := len(e.queue.enqueued()); n != published {
			t.Fatalf("dry run published %d runs", n-published)
		}

		// For real, one page of two then the rest, as the CLI loops.
		res, err = e.client.RetryRuns(ctx, client.RunBulk{Query: client.RunQuery{Workflow: "r", Status: "failed", Limit: 2}})
		if err != nil || !res.More || len(res.Runs) != 2 {
			t.Fatalf("page 1 = %+v, %v", res, err)
		}
		res2, err := e.client.RetryRuns(ctx, client.RunBulk{Query: client.RunQuery{Workflow: "r", Status: "failed", Limit: 2}, Cursor: res.NextCursor})
		if err != nil || res2.More || len(res2.Runs) != 1 {
			t.Fatalf("page 2 = %+v, %v", res2, err)
		}
		var retried []string
		for _, r := range append(res.Runs, res2.Runs...) {
			if r.Outcome != "retried" || r.Status != "pending" {
				t.Fatalf("outcome %+v", r)
			}
			retried = append(retried, r.ID)
		}
		slices.Sort(retried)
		slices.Sort(failed)
		if !slices.Equal(retried, failed) {
			t.Fatalf("retried %v, want %v", retried, failed)
		}
		for _, id := range failed {
			if run, _ := e.store.Runs.FindRunByID(ctx, id); run.Status != orcheo.RunPending || run.MaxAttempts != 2 {
				t.Fatalf("run %s after retry: %s, max attempts %d", id, run.Status, run.MaxAttempts)
			}
			if !slices.Contains(e.queue.enqueued()[published:], id) {
				t.Fatalf("retried run %s was not published", id)
			}
		}
		if run, _ := e.store.Runs.FindRunByID(ctx, otherFailed.ID); run.Status != orcheo.RunFailed {
			t.Fatalf("another workflow's run was retried")
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "c")
		a, _ := e.client.StartRun(ctx, "c", nil, "")
		b, _ := e.client.StartRun(ctx, "c", nil, "")
		running, _ := e.client.StartRun(ctx, "c", nil, "")
		if _, err := e.store.Runs.ClaimRun(ctx, running.ID, "w1", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		ended := e.mustFailedRun(t, "c")
		res, err := e.client.CancelRuns(ctx, client.RunBulk{Query: client.RunQuery{Workflow: "c"}})
		if err != nil {
			t.Fatal(err)
		}
		got := outcomes(res)
		if got[a.ID] != "cancelled" || got[b.ID] != "cancelled" || got[running.ID] != "cancel_requested" || got[ended.ID] != "refused" {
			t.Fatalf("cancel = %+v", res)
		}
		for _, r := range res.Runs {
			if r.ID == ended.ID && !strings.Contains(r.Error, "only a pending or running run") {
				t.Fatalf("refusal says %q", r.Error)
			}
		}
		if run, _ := e.store.Runs.FindRunByID(ctx, running.ID); !run.CancelRequested {
			t.Fatalf("running run not flagged")
		}
		// By queue and status, nothing is left pending.
		res, err = e.client.CancelRuns(ctx, client.RunBulk{Query: client.RunQuery{Status: "pending", Queue: orcheo.DefaultQueue}, DryRun: true})
		if err != nil || len(res.Runs) != 0 {
			t.Fatalf("pending left = %+v, %v", res, err)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "x")
		run := e.mustFailedRun(t, "x")
		for _, path := range []string{"/api/runs/retry", "/api/runs/cancel"} {
			for _, body := range []string{`{}`, `{"dry_run":true}`, ``, `{"status":"done"}`, `{"since":"2h"}`,
				`{"cursor":"nope","status":"failed"}`, `{"limit":1001,"status":"failed"}`, `{"bogus":1}`} {
				resp, out := do(t, e, "POST", path, testToken, "application/json", body)
				wantError(t, resp, out, 400, orcheo.EINVALID)
			}
			resp, out := do(t, e, "POST", path, testToken, "application/json", `{"workflow":"nope"}`)
			wantError(t, resp, out, 404, orcheo.ENOTFOUND)
		}
		if got, _ := e.store.Runs.FindRunByID(ctx, run.ID); got.Status != orcheo.RunFailed {
			t.Fatalf("a refused call changed the run")
		}
		// all: true is the explicit "every run".
		res, err := e.client.RetryRuns(ctx, client.RunBulk{All: true, DryRun: true})
		if err != nil || len(res.Runs) != 1 || res.Runs[0].Outcome != "would_retry" {
			t.Fatalf("all = %+v, %v", res, err)
		}
	})

	t.Run("ReadScopeCannot", func(t *testing.T) {
		t.Parallel()
		e, _ := scopedEnv(t, nil)
		for _, path := range []string{"/api/runs/retry", "/api/runs/cancel"} {
			resp, body := do(t, e, "POST", path, "read-0123456789abcdef", "application/json", `{"status":"failed","dry_run":true}`)
			wantError(t, resp, body, 403, orcheo.EFORBIDDEN)
			resp, body = do(t, e, "POST", path, "admin-0123456789abcdef", "application/json", `{"status":"failed","dry_run":true}`)
			if resp.StatusCode != 200 {
				t.Fatalf("admin: %d %s", resp.StatusCode, body)
			}
		}
	})
}
