package ui_test

import (
	"strings"
	"testing"
)

// TestEvents_FirstReadSent: a run that changed between its page's render
// and the stream's start is shown at once. Before, the stream took its
// first read as what the page already showed, so a retried run that ended
// in those milliseconds stayed "running" on the page (TestUI_Browser failed
// in CI on exactly that).
func TestEvents_FirstReadSent(t *testing.T) {
	e := newEnv(t)
	run := e.newRun(t, `{}`)
	b := e.browser(t)
	b.login(readToken)
	if page := b.get("/ui/runs/" + run.ID); !strings.Contains(page.body, "status-pending") {
		t.Fatalf("the run page does not show the pending run: %d", page.status)
	}
	e.fail(t, run.ID) // after the render, before the stream: its page no longer changes
	s := b.stream("/ui/runs/events?run=" + run.ID)
	data, ok := s.next(t, "run")
	if !ok || !strings.Contains(data, "status-failed") {
		t.Fatalf("first run event %q, want the failed run", data)
	}
}
