package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// recordingNotifier records the runs whose cancel was announced.
type recordingNotifier struct {
	mu  sync.Mutex
	ids []string
}

func (n *recordingNotifier) NotifyCancel(ctx context.Context, id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ids = append(n.ids, id)
	return nil
}

func TestRunRetryAndCancel(t *testing.T) {
	ctx := context.Background()

	t.Run("CancelRunning", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		n := &recordingNotifier{}
		e.srv.Cancels = n
		e.mustWorkflow(t, "cr")
		run, err := e.client.StartRun(ctx, "cr", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Runs.ClaimRun(ctx, run.ID, "w1", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, e, http.MethodPost, "/api/runs/"+run.ID+"/cancel", testToken, "", "")
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("cancel of a running run: %d %s", resp.StatusCode, body)
		}
		var got orcheo.Run
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if got.Status != orcheo.RunRunning || !got.CancelRequested {
			t.Fatalf("answer %s, want running with cancel_requested", body)
		}
		if len(n.ids) != 1 || n.ids[0] != run.ID {
			t.Fatalf("notified %v, want [%s]", n.ids, run.ID)
		}
	})

	t.Run("Retry", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "rt")
		run, err := e.client.StartRun(ctx, "rt", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		// Pending and running runs cannot be retried.
		_, err = e.client.RetryRun(ctx, run.ID)
		wantCode(t, err, orcheo.ECONFLICT)
		if _, err := e.store.Runs.ClaimRun(ctx, run.ID, "w1", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		_, err = e.client.RetryRun(ctx, run.ID)
		wantCode(t, err, orcheo.ECONFLICT)
		if _, err := e.store.Runs.CompleteRun(ctx, run.ID, 1, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "boom"}); err != nil {
			t.Fatal(err)
		}
		got, err := e.client.RetryRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != orcheo.RunPending || got.MaxAttempts != 2 || got.EnqueuedAt == nil {
			t.Fatalf("retried run %+v", got)
		}
		if q := e.queue.enqueued(); len(q) != 2 || q[1] != run.ID {
			t.Fatalf("enqueued %v, want the run twice", q)
		}
		resp, body := do(t, e, http.MethodPost, "/api/runs/"+run.ID+"/retry", testToken, "", "")
		if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "only a failed or cancelled run can be retried") {
			t.Fatalf("second retry: %d %s", resp.StatusCode, body)
		}
		resp, _ = do(t, e, http.MethodPost, "/api/runs/"+orcheo.NewID()+"/retry", testToken, "", "")
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("retry of an unknown run: %d", resp.StatusCode)
		}
	})

	t.Run("RetryEnqueueFails", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "rf")
		run, err := e.client.StartRun(ctx, "rf", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.CancelRun(ctx, run.ID); err != nil {
			t.Fatal(err)
		}
		e.queue.mu.Lock()
		e.queue.fail = true
		e.queue.mu.Unlock()
		got, err := e.client.RetryRun(ctx, run.ID)
		if err != nil || got.Status != orcheo.RunPending || got.EnqueuedAt != nil {
			t.Fatalf("retry with Redis down: %+v %v", got, err)
		}
		// The requeuer finds it.
		again, err := e.store.Runs.ClaimUnenqueuedRuns(ctx, 10)
		if err != nil || len(again) != 1 || again[0].ID != run.ID {
			t.Fatalf("unenqueued runs %v %v", again, err)
		}
	})
}
