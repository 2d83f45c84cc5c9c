package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/schedule"
	"github.com/orcheo/orcheo/server"
)

// cronEnv is a server with the cron routes on a SQLite store whose clock
// stands at t0, so that trigger configs are "set" at t0 and dispatches
// with an explicit now are deterministic.
func cronEnv(t *testing.T, t0 time.Time) (*client.Client, *recordingQueue, string) {
	t.Helper()
	st := openStore(t, "")
	st.SetNow(func() time.Time { return t0 })
	q := &recordingQueue{}
	logger := logrus.New()
	logger.SetOutput(testWriter{t})
	s := server.NewServer()
	s.Workflows, s.Runs, s.Triggers, s.Submitter, s.Engine = st.Workflows, st.Runs, st.Triggers, startSubmitter(t, st.Runs, q), newEngine()
	s.Cron, s.CronScheduler = st.Cron, schedule.Scheduler{}
	s.CronDispatcher = &schedule.Dispatcher{Cron: st.Cron, Workflows: st.Workflows, Submitter: s.Submitter, Logger: logger}
	s.Token, s.Logger = testToken, logger
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	c := client.New(ts.URL, testToken)
	if _, err := c.CreateWorkflow(context.Background(), "nightly", "nightly", "", []byte(okDefinition)); err != nil {
		t.Fatal(err)
	}
	return c, q, ts.URL
}

func TestCronConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, _ := cronEnv(t, time.Now())

	_, err := c.FindCronTrigger(ctx, "nightly")
	wantCode(t, err, orcheo.ENOTFOUND)

	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		t     orcheo.CronTrigger
		field string
	}{
		"Expression":    {orcheo.CronTrigger{Expression: "61 * * * *"}, "expression:"},
		"NoExpression":  {orcheo.CronTrigger{}, "expression:"},
		"Seconds":       {orcheo.CronTrigger{Expression: "*/5 * * * * *"}, "ORCHEO_CRON_SECONDS"},
		"Timezone":      {orcheo.CronTrigger{Expression: "@daily", Timezone: "Europe/Atlantis"}, "timezone:"},
		"Window":        {orcheo.CronTrigger{Expression: "@daily", StartAt: &start, EndAt: &start}, "end_at:"},
		"Catchup":       {orcheo.CronTrigger{Expression: "@daily", Catchup: "sometimes"}, "catchup:"},
		"CatchupBounds": {orcheo.CronTrigger{Expression: "@daily", Catchup: orcheo.CatchupAll, CatchupLimit: 100000}, "catchup_limit:"},
	} {
		tr := tc.t
		_, err := c.SetCronTrigger(ctx, "nightly", &tr)
		wantCode(t, err, orcheo.EINVALID)
		if !strings.Contains(orcheo.ErrorMessage(err), tc.field) {
			t.Errorf("%s: message %q does not name %q", name, orcheo.ErrorMessage(err), tc.field)
		}
	}
	if _, err := c.FindCronTrigger(ctx, "nightly"); orcheo.ErrorCode(err) != orcheo.ENOTFOUND {
		t.Fatalf("a rejected config was stored: %v", err)
	}

	got, err := c.SetCronTrigger(ctx, "nightly", &orcheo.CronTrigger{Expression: "30 2 * * *", Timezone: "America/New_York",
		StartAt: &start, Catchup: orcheo.CatchupLatest})
	if err != nil {
		t.Fatal(err)
	}
	// The first slot is the first 02:30 New York time at or after start.
	if got.NextAt == nil || !got.NextAt.Equal(time.Date(2030, 1, 1, 7, 30, 0, 0, time.UTC)) || got.Timezone != "America/New_York" {
		t.Fatalf("stored %+v next %v", got, got.NextAt)
	}
	if shown, err := c.FindCronTrigger(ctx, "nightly"); err != nil || shown.Expression != "30 2 * * *" || shown.Catchup != orcheo.CatchupLatest {
		t.Fatalf("shown %+v (%v)", shown, err)
	}
	list, err := c.FindCronTriggers(ctx)
	if err != nil || len(list) != 1 || list[0].NextAt == nil {
		t.Fatalf("list = %+v (%v)", list, err)
	}
	if err := c.DeleteCronTrigger(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.DeleteCronTrigger(ctx, "nightly"), orcheo.ENOTFOUND)
	_, err = c.SetCronTrigger(ctx, "no-such-workflow", &orcheo.CronTrigger{Expression: "@daily"})
	wantCode(t, err, orcheo.ENOTFOUND)
}

func TestCronDispatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	c, q, url := cronEnv(t, t0)
	if _, err := c.SetCronTrigger(ctx, "nightly", &orcheo.CronTrigger{Expression: "*/5 * * * *"}); err != nil {
		t.Fatal(err)
	}

	// The token is required.
	resp, err := http.Post(url+"/api/triggers/cron/dispatch", "application/json", bytes.NewReader([]byte(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dispatch without token: %d", resp.StatusCode)
	}
	// A malformed or far-future now is 400 naming the field.
	req, _ := http.NewRequest(http.MethodPost, url+"/api/triggers/cron/dispatch", strings.NewReader(`{"now":"yesterday"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad now: %d", resp.StatusCode)
	}
	future := time.Now().Add(time.Hour)
	_, err = c.DispatchCron(ctx, &future)
	wantCode(t, err, orcheo.EINVALID)

	now := t0.Add(5*time.Minute + 30*time.Second)
	res, err := c.DispatchCron(ctx, &now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 1 {
		t.Fatalf("dispatch created %d runs, want 1", len(res.Runs))
	}
	r := res.Runs[0]
	if r.TriggeredBy != orcheo.TriggerCron || r.Status != orcheo.RunPending || r.ScheduledFor == nil ||
		!r.ScheduledFor.Equal(t0.Add(5*time.Minute)) || !strings.Contains(string(r.Input), `"timezone":"UTC"`) {
		t.Fatalf("run = %+v input %s", r, r.Input)
	}
	if ids := q.enqueued(); len(ids) != 1 || ids[0] != r.ID {
		t.Fatalf("enqueued %v", ids)
	}
	// Again for the same now: nothing new.
	if res, err := c.DispatchCron(ctx, &now); err != nil || len(res.Runs) != 0 {
		t.Fatalf("second dispatch: %+v (%v)", res, err)
	}
	runs, total, err := c.FindRuns(ctx, "nightly", "", 0)
	if err != nil || total != 1 || runs[0].ID != r.ID {
		t.Fatalf("runs = %d (%v)", total, err)
	}
}

func TestCronNotConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	_, err := e.client.FindCronTriggers(context.Background())
	wantCode(t, err, orcheo.EUNAVAILABLE)
}
