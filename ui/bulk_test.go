package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
)

func TestRunsPage_BulkControls(t *testing.T) {
	e := newEnv(t)
	run := e.newRun(t, `{}`)
	admin := e.browser(t)
	admin.login(adminToken)
	a := admin.get("/ui/runs")
	for _, want := range []string{`id="select-all"`, `name="id" value="` + run.ID + `" form="bulk"`, `id="bulk-retry"`, `id="bulk-cancel"`} {
		if !strings.Contains(a.body, want) {
			t.Errorf("an admin's runs page lacks %q", want)
		}
	}
	reader := e.browser(t)
	reader.login(readToken)
	a = reader.get("/ui/runs")
	for _, no := range []string{`id="select-all"`, `name="id"`, `id="bulk-retry"`, `action="/ui/runs/bulk"`} {
		if strings.Contains(a.body, no) {
			t.Errorf("a read token's runs page shows %q", no)
		}
	}
}

func TestBulkRetry(t *testing.T) {
	e := newEnv(t)
	var failed []string
	for i := 0; i < 3; i++ {
		r := e.newRun(t, `{}`)
		e.fail(t, r.ID)
		failed = append(failed, r.ID)
	}
	pending := e.newRun(t, `{}`)
	b := e.browser(t)
	b.login(adminToken)
	csrf := b.csrf()
	form := url.Values{"csrf": {csrf}, "action": {"retry"}, "back": {"/ui/runs?status=failed"}, "id": append(append([]string{}, failed...), pending.ID, failed[0])}

	// The first POST asks to confirm and changes nothing.
	a := b.post("/ui/runs/bulk", form)
	if a.status != http.StatusOK || !strings.Contains(a.body, "3 of 4 selected runs can be retried") || !strings.Contains(a.body, `id="bulk-confirm"`) {
		t.Fatalf("confirmation: %d %s", a.status, a.body)
	}
	if !strings.Contains(a.body, `data-run="`+pending.ID+`" data-outcome="refused"`) || !strings.Contains(a.body, "only failed or cancelled runs can be retried") {
		t.Error("the pending run is not shown refused")
	}
	for _, id := range failed {
		if got := e.run(t, id); got.Status != orcheo.RunFailed || got.Attempt != 1 {
			t.Fatalf("run %s is %s attempt %d before the confirmation", id, got.Status, got.Attempt)
		}
	}
	// The confirmation form carries only the runs it can act on.
	if strings.Count(a.body, `<input type="hidden" name="id"`) != 3 || strings.Contains(a.body, `<input type="hidden" name="id" value="`+pending.ID) {
		t.Error("the confirmation form does not hold exactly the three failed runs")
	}
	if !strings.Contains(a.body, `href="/ui/runs?status=failed"`) {
		t.Error("the confirmation does not link back to the runs page it came from")
	}

	form.Set("confirm", "yes")
	a = b.post("/ui/runs/bulk", form)
	if a.status != http.StatusOK || !strings.Contains(a.body, "3 of 4 runs retried") {
		t.Fatalf("bulk retry: %d %s", a.status, a.body)
	}
	for _, id := range failed {
		got := e.run(t, id)
		if got.Status != orcheo.RunPending || e.queue.count(id) != 2 {
			t.Errorf("run %s after a bulk retry: %s, published %d times; want pending, published again", id, got.Status, e.queue.count(id))
		}
	}
	if got := e.run(t, pending.ID); got.Status != orcheo.RunPending || e.queue.count(pending.ID) != 1 {
		t.Errorf("the pending run was touched: %s, published %d times", got.Status, e.queue.count(pending.ID))
	}
	// Retried again: they are pending now, so each is refused.
	a = b.post("/ui/runs/bulk", form)
	if strings.Count(a.body, `data-outcome="refused"`) != 4 {
		t.Errorf("a second bulk retry: want every run refused: %s", a.body)
	}
}

func TestBulkCancel(t *testing.T) {
	e := newEnv(t)
	pending := e.newRun(t, `{}`)
	running := e.newRun(t, `{}`)
	e.claim(t, running.ID)
	b := e.browser(t)
	b.login(adminToken)
	a := b.post("/ui/runs/bulk", url.Values{"csrf": {b.csrf()}, "action": {"cancel"}, "confirm": {"yes"}, "id": {pending.ID, running.ID}})
	if a.status != http.StatusOK {
		t.Fatalf("bulk cancel: %d %s", a.status, a.body)
	}
	if got := e.run(t, pending.ID); got.Status != orcheo.RunCancelled {
		t.Errorf("pending run is %s, want cancelled", got.Status)
	}
	if got := e.run(t, running.ID); got.Status != orcheo.RunRunning || !got.CancelRequested {
		t.Errorf("running run: %s, cancel requested %v", got.Status, got.CancelRequested)
	}
	e.cancel.mu.Lock()
	told := append([]string{}, e.cancel.ids...)
	e.cancel.mu.Unlock()
	if len(told) != 1 || told[0] != running.ID {
		t.Errorf("workers told of %v, want the running run only", told)
	}
	if !strings.Contains(a.body, `data-run="`+running.ID+`" data-outcome="cancel requested"`) ||
		!strings.Contains(a.body, `data-run="`+pending.ID+`" data-outcome="cancelled"`) {
		t.Errorf("outcomes not shown: %s", a.body)
	}
}

func TestBulk_Refused(t *testing.T) {
	e := newEnv(t)
	r := e.newRun(t, `{}`)
	e.fail(t, r.ID)
	b := e.browser(t)
	b.login(adminToken)
	csrf := b.csrf()
	many := make([]string, 101)
	for i := range many {
		many[i] = orcheo.NewID()
	}
	for name, tc := range map[string]struct {
		form   url.Values
		status int
	}{
		"NoCSRF":    {url.Values{"action": {"retry"}, "confirm": {"yes"}, "id": {r.ID}}, http.StatusForbidden},
		"BadCSRF":   {url.Values{"csrf": {csrf + "x"}, "action": {"retry"}, "confirm": {"yes"}, "id": {r.ID}}, http.StatusForbidden},
		"BadAction": {url.Values{"csrf": {csrf}, "action": {"delete"}, "confirm": {"yes"}, "id": {r.ID}}, http.StatusBadRequest},
		"BadID":     {url.Values{"csrf": {csrf}, "action": {"retry"}, "confirm": {"yes"}, "id": {r.ID, "../etc"}}, http.StatusBadRequest},
		"NoIDs":     {url.Values{"csrf": {csrf}, "action": {"retry"}, "confirm": {"yes"}}, http.StatusBadRequest},
		"TooMany":   {url.Values{"csrf": {csrf}, "action": {"retry"}, "confirm": {"yes"}, "id": append(many, r.ID)}, http.StatusBadRequest},
	} {
		if a := b.post("/ui/runs/bulk", tc.form); a.status != tc.status || !strings.Contains(a.body, "error-box") {
			t.Errorf("%s: %d, want %d with a message", name, a.status, tc.status)
		}
	}
	reader := e.browser(t)
	reader.login(readToken)
	if a := reader.post("/ui/runs/bulk", url.Values{"csrf": {reader.csrf()}, "action": {"retry"}, "confirm": {"yes"}, "id": {r.ID}}); a.status != http.StatusForbidden {
		t.Errorf("a read token's bulk retry: %d, want 403", a.status)
	}
	evil := e.browser(t)
	evil.c.Jar = b.c.Jar
	evil.origin = "https://evil.example"
	if a := evil.post("/ui/runs/bulk", url.Values{"csrf": {csrf}, "action": {"retry"}, "confirm": {"yes"}, "id": {r.ID}}); a.status != http.StatusForbidden {
		t.Errorf("a cross-origin bulk retry: %d, want 403", a.status)
	}
	if got := e.run(t, r.ID); got.Status != orcheo.RunFailed || got.Attempt != 1 {
		t.Errorf("after refused bulk retries the run is %s attempt %d", got.Status, got.Attempt)
	}
}
