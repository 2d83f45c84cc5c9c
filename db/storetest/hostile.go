package storetest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/orcheo/orcheo"
)

// hostileJSON are documents PostgreSQL refuses and SQLite might keep: each
// must be EINVALID on every backend, before anything is written.
var hostileJSON = []struct{ name, doc string }{
	{"EscapedNUL", `{"x":"a\u0000b"}`},
	{"NULInKey", `{"a\u0000":1}`},
	{"InvalidUTF8", "{\"x\":\"a\xffb\"}"},
	{"LoneSurrogate", `{"x":"\ud800"}`},
	{"HugeExponent", `{"n":1e999999}`},
	{"TinyExponent", `{"n":1e-999999}`},
	{"LongInteger", `{"n":` + strings.Repeat("7", 200000) + `}`},
	{"TooDeep", strings.Repeat(`{"a":`, orcheo.MaxJSONDepth+1) + `1` + strings.Repeat(`}`, orcheo.MaxJSONDepth+1)},
}

// hostileRefs are ids and handles that can name nothing: lookups by them
// are ENOTFOUND, never a driver error.
var hostileRefs = []string{"\x00", "\xff", "a\x00b", "wf-\xfe", "%00", strings.Repeat("x", 10000), "\xed\xa0\x80"}

// hostileText is text with NUL and invalid UTF-8, and what a backend that
// sanitises it keeps.
const (
	hostileText   = "boom \x00 \xff end"
	sanitisedText = "boom \uFFFD \uFFFD end"
)

// exerciseHostile feeds every field the bytes that made the API answer
// 500 (issue #8): each is refused as EINVALID, looked up as ENOTFOUND or
// stored safely, the same way on every backend.
func exerciseHostile(t *testing.T, backend Backend) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("WorkflowName", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		for _, name := range []string{"a\x00b", "bad \xff name"} {
			_, err := s.Workflows.CreateWorkflow(ctx, &orcheo.Workflow{Handle: uniqueHandle("h"), Name: name}, definition)
			wantCode(t, err, orcheo.EINVALID)
			wantMessageContains(t, err, "name: ")
		}
	})

	t.Run("WorkflowDefinition", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		for _, h := range hostileJSON {
			def := json.RawMessage(`{"description":` + h.doc + `,"nodes":[{"id":"a","type":"log"}]}`)
			_, err := s.Workflows.CreateWorkflow(ctx, &orcheo.Workflow{Handle: uniqueHandle("h"), Name: "n"}, def)
			wantCode(t, err, orcheo.EINVALID)
			wantMessageContains(t, err, "workflow definition: ")
			_, err = s.Workflows.CreateWorkflowVersion(ctx, wf.ID, def)
			wantCode(t, err, orcheo.EINVALID)
		}
		if vs, err := s.Workflows.FindWorkflowVersions(ctx, wf.ID); err != nil || len(vs) != 1 {
			t.Fatalf("versions = %d, %v; want only version 1", len(vs), err)
		}
	})

	t.Run("WorkflowLookups", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		for _, ref := range hostileRefs {
			_, err := s.Workflows.FindWorkflowByRef(ctx, ref)
			wantCode(t, err, orcheo.ENOTFOUND)
			if msg := orcheo.ErrorMessage(err); !utf8.ValidString(msg) || strings.IndexByte(msg, 0) >= 0 {
				t.Fatalf("message %q is not clean text", msg)
			}
			_, err = s.Workflows.FindWorkflowVersionByID(ctx, ref)
			wantCode(t, err, orcheo.ENOTFOUND)
			_, err = s.Workflows.ArchiveWorkflow(ctx, ref)
			wantCode(t, err, orcheo.ENOTFOUND)
			_, err = s.Workflows.CreateWorkflowVersion(ctx, ref, definition)
			wantCode(t, err, orcheo.ENOTFOUND)
			if vs, err := s.Workflows.FindWorkflowVersions(ctx, ref); err != nil || len(vs) != 0 {
				t.Fatalf("FindWorkflowVersions(%q) = %d, %v", ref, len(vs), err)
			}
			h := ref
			if list, n, err := s.Workflows.FindWorkflows(ctx, orcheo.WorkflowFilter{Handle: &h, IncludeArchived: true}); err != nil || n != 0 || len(list) != 0 {
				t.Fatalf("FindWorkflows(handle %q) = %d, %d, %v; want none", ref, len(list), n, err)
			}
			if cfg, err := s.Triggers.FindWebhookConfig(ctx, ref); err != nil || cfg.Enabled {
				t.Fatalf("FindWebhookConfig(%q) = %+v, %v", ref, cfg, err)
			}
			err = s.Triggers.SetWebhookConfig(ctx, ref, &orcheo.WebhookConfig{Enabled: true})
			wantCode(t, err, orcheo.ENOTFOUND)
			_, err = s.Cron.FindCronTrigger(ctx, ref)
			wantCode(t, err, orcheo.ENOTFOUND)
			err = s.Cron.SetCronTrigger(ctx, &orcheo.CronTrigger{WorkflowID: ref, Expression: "@hourly"})
			wantCode(t, err, orcheo.ENOTFOUND)
		}
	})

	t.Run("WebhookAndCronConfig", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		err := s.Triggers.SetWebhookConfig(ctx, wf.ID, &orcheo.WebhookConfig{Enabled: true, Methods: []string{"P\x00ST"}})
		wantCode(t, err, orcheo.EINVALID)
		for _, tr := range []*orcheo.CronTrigger{
			{WorkflowID: wf.ID, Expression: "@hourly\x00"},
			{WorkflowID: wf.ID, Expression: "@hourly \xff"},
			{WorkflowID: wf.ID, Expression: "@hourly", Timezone: "UTC\x00"},
			{WorkflowID: wf.ID, Expression: "@hourly", Timezone: "\xff"},
		} {
			wantCode(t, s.Cron.SetCronTrigger(ctx, tr), orcheo.EINVALID)
		}
	})

	t.Run("RunInput", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		for _, h := range hostileJSON {
			_, _, err := s.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID,
				TriggeredBy: orcheo.TriggerWebhook, Input: json.RawMessage(`{"body":` + h.doc + `}`)})
			wantCode(t, err, orcheo.EINVALID)
			wantMessageContains(t, err, "run input: ")
		}
		for _, key := range []string{"k\x00", "k\xff"} {
			_, _, err := s.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID,
				TriggeredBy: orcheo.TriggerManual, IdempotencyKey: key})
			wantCode(t, err, orcheo.EINVALID)
			wantMessageContains(t, err, "idempotency key: ")
		}
		if _, n, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID}); err != nil || n != 0 {
			t.Fatalf("runs = %d, %v; want none stored", n, err)
		}
		// What is close to the limits is kept as it is.
		ok := `{"body":{"s":"é😀\ud83d\ude00","n":1e300,"m":-1.5e-300,"big":` + strings.Repeat("9", 300) + `}}`
		r := MustRun(t, s, wf, func(r *orcheo.Run) { r.Input = json.RawMessage(ok) })
		got, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, got.Input, json.RawMessage(ok)) {
			t.Fatalf("input = %.200s, want %.200s", got.Input, ok)
		}
	})

	t.Run("RunLookups", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		for _, id := range hostileRefs {
			_, err := s.Runs.FindRunByID(ctx, id)
			wantCode(t, err, orcheo.ENOTFOUND)
			_, err = s.Runs.ClaimRun(ctx, id, "w1", t0)
			wantCode(t, err, orcheo.ENOTFOUND)
			_, err = s.Runs.CancelRun(ctx, id)
			wantCode(t, err, orcheo.ENOTFOUND)
			_, err = s.Runs.RetryRun(ctx, id)
			wantCode(t, err, orcheo.ENOTFOUND)
			wantCode(t, s.Runs.MarkRunUnenqueued(ctx, id), orcheo.ENOTFOUND)
			_, err = s.Runs.ReleaseRun(ctx, id, 1)
			wantCode(t, err, orcheo.ENOTFOUND)
			_, err = s.Runs.CompleteRun(ctx, id, 1, orcheo.RunCompletion{Status: orcheo.RunSucceeded})
			wantCode(t, err, orcheo.ENOTFOUND)
			wantCode(t, s.Runs.SaveRunStep(ctx, &orcheo.RunStep{RunID: id, Attempt: 1, Seq: 1, Node: "a",
				Status: orcheo.StepRunning, StartedAt: t0}), orcheo.ENOTFOUND)
			if ids, err := s.Runs.FindCancelRequested(ctx, []string{id}); err != nil || len(ids) != 0 {
				t.Fatalf("FindCancelRequested(%q) = %v, %v", id, ids, err)
			}
			if ids, err := s.Runs.HeartbeatRuns(ctx, "w1", []string{id}, t0); err != nil || len(ids) != 0 {
				t.Fatalf("HeartbeatRuns(%q) = %v, %v", id, ids, err)
			}
			wf := id
			if list, n, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf}); err != nil || n != 0 || len(list) != 0 {
				t.Fatalf("FindRuns(workflow %q) = %d, %d, %v; want none", id, len(list), n, err)
			}
			trig := id
			_, _, err = s.Runs.FindRuns(ctx, orcheo.RunFilter{TriggeredBy: &trig})
			wantCode(t, err, orcheo.EINVALID)
			st := orcheo.RunStatus(id)
			_, _, err = s.Runs.FindRuns(ctx, orcheo.RunFilter{Status: &st})
			wantCode(t, err, orcheo.EINVALID)
		}
	})

	t.Run("RunOutput", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustClaim(t, s, MustRun(t, s, wf).ID)
		for _, h := range hostileJSON {
			_, err := s.Runs.CompleteRun(ctx, r.ID, r.Attempt, orcheo.RunCompletion{Status: orcheo.RunSucceeded,
				Output: json.RawMessage(h.doc)})
			wantCode(t, err, orcheo.EINVALID)
			wantMessageContains(t, err, "run output: ")
		}
		// The run was left running: the worker can still fail it.
		done, err := s.Runs.CompleteRun(ctx, r.ID, r.Attempt, orcheo.RunCompletion{Status: orcheo.RunFailed,
			Error: "run output cannot be stored"})
		if err != nil || done.Status != orcheo.RunFailed {
			t.Fatalf("complete after refusals = %v, %v", done, err)
		}
	})

	t.Run("StepFields", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustClaim(t, s, MustRun(t, s, wf).ID)
		step := func(mod func(*orcheo.RunStep)) *orcheo.RunStep {
			st := &orcheo.RunStep{RunID: r.ID, Attempt: r.Attempt, Seq: 1, Node: "a", NodeType: "set",
				Status: orcheo.StepSucceeded, StartedAt: t0, CompletedAt: &t0}
			mod(st)
			return st
		}
		for _, h := range hostileJSON {
			for _, mod := range []func(*orcheo.RunStep){
				func(st *orcheo.RunStep) { st.Output = json.RawMessage(h.doc) },
				func(st *orcheo.RunStep) { st.Input = json.RawMessage(h.doc) },
			} {
				wantCode(t, s.Runs.SaveRunStep(ctx, step(mod)), orcheo.EINVALID)
				_, err := s.Runs.CompleteRun(ctx, r.ID, r.Attempt, orcheo.RunCompletion{Status: orcheo.RunSucceeded,
					Steps: []*orcheo.RunStep{step(mod)}})
				wantCode(t, err, orcheo.EINVALID)
				wantMessageContains(t, err, `step "a"`)
			}
		}
		for _, mod := range []func(*orcheo.RunStep){
			func(st *orcheo.RunStep) { st.Node = "a\x00" },
			func(st *orcheo.RunStep) { st.NodeType = "\xff" },
		} {
			wantCode(t, s.Runs.SaveRunStep(ctx, step(mod)), orcheo.EINVALID)
		}
		// Error text is a report, not data: it is kept with NUL and invalid
		// UTF-8 replaced by U+FFFD, on the step and on the run.
		if err := s.Runs.SaveRunStep(ctx, step(func(st *orcheo.RunStep) { st.Error = hostileText })); err != nil {
			t.Fatalf("save step with hostile error: %v", err)
		}
		found, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(found.Steps) != 1 || found.Steps[0].Error != sanitisedText {
			t.Fatalf("steps = %+v, want the error %q", found.Steps, sanitisedText)
		}
		// A long error cut at a multi-byte character stays valid UTF-8.
		long := "x" + strings.Repeat("é", 1000) + hostileText
		done, err := s.Runs.CompleteRun(ctx, r.ID, r.Attempt, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: long,
			Steps: []*orcheo.RunStep{step(func(st *orcheo.RunStep) { st.Status, st.Error = orcheo.StepFailed, hostileText })}})
		if err != nil {
			t.Fatalf("complete with hostile error: %v", err)
		}
		if done.Status != orcheo.RunFailed || !strings.HasSuffix(done.Error, sanitisedText) {
			t.Fatalf("completed run = %s %.40q…", done.Status, done.Error)
		}
		found, err = s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if found.Error != done.Error || !utf8.ValidString(found.Error) || len(found.Steps) != 1 || found.Steps[0].Error != sanitisedText {
			t.Fatalf("stored error %.40q…, steps %+v", found.Error, found.Steps)
		}
	})

	t.Run("SkippedRunReason", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		slot := t0
		r := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerCron, ScheduledFor: &slot}
		got, created, err := s.Cron.CreateSkippedRun(ctx, r, hostileText)
		if err != nil || !created {
			t.Fatalf("create skipped run = %v, %v", created, err)
		}
		if found, err := s.Runs.FindRunByID(ctx, got.ID); err != nil || found.Error != sanitisedText {
			t.Fatalf("skipped run error = %q, %v; want %q", found.Error, err, sanitisedText)
		}
	})

	t.Run("Checkpoint", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustClaim(t, s, MustRun(t, s, wf).ID)
		for _, h := range hostileJSON {
			_, err := s.Runs.SuspendRun(ctx, r.ID, r.Attempt, t0, json.RawMessage(`{"state":`+h.doc+`}`))
			wantCode(t, err, orcheo.EINVALID)
			wantMessageContains(t, err, "run checkpoint: ")
		}
		if got, err := s.Runs.FindRunByID(ctx, r.ID); err != nil || got.Status != orcheo.RunRunning {
			t.Fatalf("run after refusals = %v, %v; want still running", got, err)
		}
	})
}
