package test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
)

// TestRunsBulkRetry drives orcheo runs list pages and runs retry by filter
// against a live api and worker: three failed runs, a dry run that changes
// nothing, then a retry whose three new attempts execute.
func TestRunsBulkRetry(t *testing.T) {
	s := startStack(t, "e2e_runs_bulk")
	ctx := context.Background()
	if out, code := cli(t, s.env, "workflows", "create", "-f", writeFile(t, "refuse.yaml", failingWorkflow)); code != 0 {
		t.Fatalf("workflows create: exit %d: %s", code, out)
	}
	var failed []string
	for i := 0; i < 3; i++ {
		run, err := s.client.StartRun(ctx, "refuse", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := waitRun(t, s.client, run.ID); got.Status != orcheo.RunFailed || got.Attempt != 1 {
			t.Fatalf("run %s: %s attempt %d, want failed at attempt 1", run.ID, got.Status, got.Attempt)
		}
		failed = append(failed, run.ID)
	}

	t.Run("ListPages", func(t *testing.T) {
		out, code := cli(t, s.env, "runs", "list", "--workflow", "refuse", "--limit", "2")
		m := regexp.MustCompile(`--cursor (\S+)`).FindStringSubmatch(out)
		if code != 0 || m == nil || !strings.Contains(out, failed[2]) || !strings.Contains(out, failed[1]) {
			t.Fatalf("runs list --limit 2: exit %d, want the two newest runs and a cursor:\n%s", code, out)
		}
		out, code = cli(t, s.env, "runs", "list", "--workflow", "refuse", "--limit", "2", "--cursor", m[1], "--json")
		var page client.RunPage
		if code != 0 || json.Unmarshal([]byte(out), &page) != nil || len(page.Runs) != 1 || page.Runs[0].ID != failed[0] || page.HasMore {
			t.Fatalf("runs list --cursor: exit %d, want the oldest run alone:\n%s", code, out)
		}
		if out, code := cli(t, s.env, "runs", "list", "--cursor", "garbled"); code == 0 || !strings.Contains(out, "cursor") {
			t.Fatalf("runs list with a garbled cursor: exit %d:\n%s", code, out)
		}
	})

	t.Run("NoFilterRefused", func(t *testing.T) {
		if out, code := cli(t, s.env, "runs", "retry", "--dry-run"); code == 0 || !strings.Contains(out, "--all") {
			t.Fatalf("runs retry --dry-run without a filter: exit %d:\n%s", code, out)
		}
	})

	t.Run("DryRunThenRetry", func(t *testing.T) {
		out, code := cli(t, s.env, "runs", "retry", "--status", "failed", "--workflow", "refuse", "--since", "1h", "--dry-run")
		if code != 0 || strings.Count(out, "would_retry") != 4 || !strings.Contains(out, "dry run, nothing changed: 3 runs matched, 3 would_retry") {
			t.Fatalf("runs retry --dry-run: exit %d:\n%s", code, out)
		}
		for _, id := range failed {
			if run, err := s.client.FindRunByID(ctx, id); err != nil || run.Status != orcheo.RunFailed || run.Attempt != 1 {
				t.Fatalf("after the dry run, run %s is %+v (%v)", id, run, err)
			}
		}
		out, code = cli(t, s.env, "runs", "retry", "--status", "failed", "--workflow", "refuse", "--since", "1h", "--batch", "2")
		if code != 0 || strings.Count(out, "retried") != 4 || !strings.Contains(out, "3 runs matched, 3 retried") {
			t.Fatalf("runs retry: exit %d:\n%s", code, out)
		}
		for _, id := range failed {
			run := waitRun(t, s.client, id)
			if run.Status != orcheo.RunFailed || run.Attempt != 2 {
				t.Fatalf("run %s after the retry: %s at attempt %d, want failed again at attempt 2", id, run.Status, run.Attempt)
			}
			var second bool
			for _, st := range run.Steps {
				second = second || st.Attempt == 2
			}
			if !second {
				t.Fatalf("run %s has no step of attempt 2: the new attempt did not execute", id)
			}
		}
		// Nothing pending is left to cancel.
		out, code = cli(t, s.env, "runs", "cancel", "--status", "pending", "--queue", "default", "--dry-run")
		if code != 0 || !strings.Contains(out, "0 runs matched") {
			t.Fatalf("runs cancel --dry-run: exit %d:\n%s", code, out)
		}
	})
}
