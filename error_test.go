package orcheo_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/orcheo/orcheo"
)

func TestErrorCodeAndMessage(t *testing.T) {
	t.Parallel()
	app := orcheo.Errorf(orcheo.ENOTFOUND, "run %q not found", "x")
	wrapped := fmt.Errorf("find run: %w", app)
	for name, tc := range map[string]struct {
		err           error
		code, message string
	}{
		"Nil":         {nil, "", ""},
		"Application": {app, orcheo.ENOTFOUND, `run "x" not found`},
		"Wrapped":     {wrapped, orcheo.ENOTFOUND, `run "x" not found`},
		"Other":       {errors.New("pq: connection refused"), orcheo.EINTERNAL, "Internal error"},
	} {
		if got := orcheo.ErrorCode(tc.err); got != tc.code {
			t.Errorf("%s: ErrorCode = %q, want %q", name, got, tc.code)
		}
		if got := orcheo.ErrorMessage(tc.err); got != tc.message {
			t.Errorf("%s: ErrorMessage = %q, want %q", name, got, tc.message)
		}
	}
}

func TestWorkflowValidate(t *testing.T) {
	t.Parallel()
	ok := &orcheo.Workflow{Handle: "orders-v2_x"}
	if err := ok.Validate(); err != nil || ok.Queue != orcheo.DefaultQueue {
		t.Fatalf("Validate = %v, queue %q", err, ok.Queue)
	}
	for _, wf := range []*orcheo.Workflow{
		{Handle: ""}, {Handle: "Upper"}, {Handle: "-lead"}, {Handle: "has space"},
		{Handle: orcheo.NewID()}, {Handle: "ok", Queue: "Bad Queue"},
		{Handle: "ok", Name: string(make([]byte, 201))},
	} {
		if err := wf.Validate(); orcheo.ErrorCode(err) != orcheo.EINVALID {
			t.Errorf("Validate(%+v) = %v, want EINVALID", wf, err)
		}
	}
}

func TestRunValidate(t *testing.T) {
	t.Parallel()
	ok := &orcheo.Run{WorkflowID: "w", VersionID: "v", TriggeredBy: orcheo.TriggerWebhook, Input: []byte(`{}`)}
	if err := ok.Validate(); err != nil || ok.Queue != orcheo.DefaultQueue {
		t.Fatalf("Validate = %v, queue %q", err, ok.Queue)
	}
	for name, r := range map[string]*orcheo.Run{
		"NoWorkflow": {VersionID: "v", TriggeredBy: orcheo.TriggerManual},
		"BadTrigger": {WorkflowID: "w", VersionID: "v", TriggeredBy: "email"},
		"BadInput":   {WorkflowID: "w", VersionID: "v", TriggeredBy: orcheo.TriggerManual, Input: []byte(`{`)},
		"LongKey":    {WorkflowID: "w", VersionID: "v", TriggeredBy: orcheo.TriggerManual, IdempotencyKey: string(make([]byte, 256))},
	} {
		if err := r.Validate(); orcheo.ErrorCode(err) != orcheo.EINVALID {
			t.Errorf("%s: Validate = %v, want EINVALID", name, err)
		}
	}
}

func TestRunStatus(t *testing.T) {
	t.Parallel()
	for _, s := range orcheo.RunStatuses {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
		want := s == orcheo.RunSucceeded || s == orcheo.RunFailed || s == orcheo.RunCancelled || s == orcheo.RunSkipped
		if s.Terminal() != want {
			t.Errorf("%s.Terminal() = %v", s, !want)
		}
	}
	if orcheo.RunStatus("done").Valid() {
		t.Error("unknown status is valid")
	}
}

func TestWebhookConfig(t *testing.T) {
	t.Parallel()
	c := &orcheo.WebhookConfig{Methods: []string{"post", "Put"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.AllowsMethod("POST") || !c.AllowsMethod("PUT") || c.AllowsMethod("GET") {
		t.Fatalf("methods = %v", c.Methods)
	}
	if def := (&orcheo.WebhookConfig{}); !def.AllowsMethod("POST") || def.AllowsMethod("GET") {
		t.Fatal("the default config should accept POST only")
	}
	if err := (&orcheo.WebhookConfig{Methods: []string{"TRACE"}}).Validate(); orcheo.ErrorCode(err) != orcheo.EINVALID {
		t.Fatalf("TRACE: %v", err)
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	a, b := orcheo.NewID(), orcheo.NewID()
	if a == b || !orcheo.IsID(a) || orcheo.IsID("hello") {
		t.Fatalf("ids %q %q", a, b)
	}
}
