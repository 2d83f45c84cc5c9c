package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
)

func runCommands(e *env, cfg Config) map[string]command {
	return map[string]command{
		"list":   &runsList{env: e, cfg: cfg},
		"show":   &runsShow{env: e, cfg: cfg},
		"cancel": &runsCancel{env: e, cfg: cfg},
		"retry":  &runsRetry{env: e, cfg: cfg},
		"purge":  &runsPurge{env: e, cfg: cfg},
	}
}

func statusList() string {
	names := make([]string, len(orcheo.RunStatuses))
	for i, s := range orcheo.RunStatuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

type runsShow struct {
	*env
	cfg Config
}

func (c *runsShow) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("runs show")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("runs show ID", pos, "ID"); err != nil {
		return err
	}
	cl := c.cfg.newClient()
	run, err := cl.FindRunByID(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, run)
	}
	return printRun(c.stdout, run, workflowHandle(ctx, cl, run.WorkflowID))
}

// lateAfter is how long after its slot a cron run must have been created to
// be shown as late: on-time slots are created within milliseconds, caught-up
// ones after the beat or API came back.
const lateAfter = time.Second

// runNote is the NOTE column of runs list: why a skipped slot did not run,
// or how late a cron slot fired (a catch-up, or a beat failover).
func runNote(r *orcheo.Run) string {
	if r.Status == orcheo.RunSkipped {
		return r.Error
	}
	if late := cronLateness(r); late >= lateAfter {
		return "fired " + late.Round(time.Second).String() + " late"
	}
	return ""
}

// cronLateness is how long after its slot a cron run was created; 0 for
// other runs.
func cronLateness(r *orcheo.Run) time.Duration {
	if r.ScheduledFor == nil {
		return 0
	}
	return r.CreatedAt.Sub(*r.ScheduledFor)
}

// handleMap maps workflow ids to handles for display.
type handleMap map[string]string

// name returns the handle of a workflow id, or the id if unknown.
func (m handleMap) name(id string) string {
	if h, ok := m[id]; ok {
		return h
	}
	return id
}

// workflowHandles fetches every workflow's handle, archived ones included.
func workflowHandles(ctx context.Context, cl *client.Client) (handleMap, error) {
	wfs, _, err := cl.FindWorkflows(ctx, true)
	if err != nil {
		return nil, err
	}
	m := handleMap{}
	for _, wf := range wfs {
		m[wf.ID] = wf.Handle
	}
	return m, nil
}

// workflowHandle returns a workflow's handle, or its id if it cannot be
// fetched: the run is what the user asked for.
func workflowHandle(ctx context.Context, cl *client.Client, id string) string {
	wf, err := cl.FindWorkflowByRef(ctx, id)
	if err != nil {
		return id
	}
	return wf.Handle
}

// scheduledZone names a cron run's slot in its trigger's zone, from the
// run's input, when that zone is not UTC: " (02:30:00 Europe/Paris)".
func scheduledZone(r *orcheo.Run) string {
	var in struct {
		ScheduledFor string `json:"scheduled_for"`
		Timezone     string `json:"timezone"`
	}
	if json.Unmarshal(r.Input, &in) != nil || in.Timezone == "" || in.Timezone == "UTC" {
		return ""
	}
	local, err := time.Parse(time.RFC3339, in.ScheduledFor)
	if err != nil {
		return ""
	}
	return " (" + local.Format("2006-01-02 15:04:05") + " " + in.Timezone + ")"
}

// attemptsUsed is the number of attempts that count against max_attempts:
// executions a worker suspended or handed back do not.
func attemptsUsed(r *orcheo.Run) int {
	return r.Attempt - r.ReleasedAttempts
}

// printRun shows a run for people: status, timings, steps, output or error.
func printRun(w io.Writer, r *orcheo.Run, workflow string) error {
	fmt.Fprintf(w, "Run       %s\nWorkflow  %s (version %d)\nStatus    %s\nTrigger   %s\nAttempt   %d of %d",
		r.ID, workflow, r.Version, r.Status, r.TriggeredBy, attemptsUsed(r), r.MaxAttempts)
	if r.ReleasedAttempts > 0 {
		// Steps carry the execution number; suspensions and hand-backs
		// start a new one without using up an attempt.
		fmt.Fprintf(w, " (execution %d: %d suspended or handed back)", r.Attempt, r.ReleasedAttempts)
	}
	fmt.Fprintln(w)
	if r.Status == orcheo.RunPending && r.NotBefore != nil {
		// A retry's or a suspended delay's resume time.
		fmt.Fprintf(w, "Not before %s\n", formatTime(r.NotBefore))
	}
	if r.ScheduledFor != nil {
		fmt.Fprintf(w, "Scheduled %s%s\n", formatTime(r.ScheduledFor), scheduledZone(r))
	}
	fmt.Fprintf(w, "Created   %s\nStarted   %s\nFinished  %s\nDuration  %s\n",
		formatTime(&r.CreatedAt), formatTime(r.StartedAt), formatTime(r.CompletedAt), formatDuration(r.StartedAt, r.CompletedAt))
	if r.Error != "" {
		fmt.Fprintf(w, "Error     %s\n", r.Error)
	}
	if len(r.Output) > 0 && string(r.Output) != "null" {
		fmt.Fprintf(w, "Output    %s\n", r.Output)
	}
	if len(r.Steps) == 0 {
		fmt.Fprintln(w, "Steps     none")
		return nil
	}
	fmt.Fprintln(w, "Steps:")
	t := newTable(w, "  #", "EXEC", "NODE", "TYPE", "STATUS", "DURATION", "OUTPUT / ERROR")
	for _, s := range r.Steps {
		detail := string(s.Output)
		if s.Error != "" {
			detail = s.Error
		}
		if len(detail) > 80 {
			detail = detail[:77] + "..."
		}
		started := s.StartedAt
		t.row("  "+strconv.Itoa(s.Seq), strconv.Itoa(s.Attempt), s.Node, s.NodeType, string(s.Status),
			formatDuration(&started, s.CompletedAt), detail)
	}
	return t.flush()
}

type runsCancel struct {
	*env
	cfg Config
}

func (c *runsCancel) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("runs cancel")
	wait := fs.Bool("wait", false, "wait until a running run has stopped")
	timeout := fs.Duration("timeout", 5*time.Minute, "with --wait, give up after this long")
	bulk := addBulkFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 && bulk.given() {
		return bulk.run(ctx, c.env, c.cfg, "cancel")
	}
	if err := wantArgs(cancelUsage, pos, "ID"); err != nil {
		return err
	}
	if bulk.given() {
		return orcheo.Errorf(orcheo.EINVALID, "runs cancel takes a run id or filters, not both")
	}
	cl := c.cfg.newClient()
	run, err := cl.CancelRun(ctx, pos[0])
	if err != nil {
		return err
	}
	if run.Status != orcheo.RunRunning {
		fmt.Fprintf(c.stdout, "run %s %s\n", run.ID, run.Status)
		return nil
	}
	fmt.Fprintf(c.stdout, "run %s cancel requested; its worker stops it at the next node\n", run.ID)
	if !*wait {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	done, err := cl.WaitRun(wctx, run.ID, 250*time.Millisecond)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "run %s %s\n", done.ID, done.Status)
	return nil
}

type runsRetry struct {
	*env
	cfg Config
}

func (c *runsRetry) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("runs retry")
	bulk := addBulkFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 && bulk.given() {
		return bulk.run(ctx, c.env, c.cfg, "retry")
	}
	if err := wantArgs(retryUsage, pos, "ID"); err != nil {
		return err
	}
	if bulk.given() {
		return orcheo.Errorf(orcheo.EINVALID, "runs retry takes a run id or filters, not both")
	}
	run, err := c.cfg.newClient().RetryRun(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "run %s %s (attempt %d of %d next)\n", run.ID, run.Status,
		run.Attempt-run.ReleasedAttempts+1, run.MaxAttempts)
	return nil
}
