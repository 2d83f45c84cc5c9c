package ui

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/orcheo/orcheo"
)

// runsPageSize is how many runs the runs page shows at once.
const runsPageSize = 50

// runsQuery is the runs page's filter as the query string gives it. The
// same query drives the page and its live stream.
type runsQuery struct {
	Status   string
	Workflow string // id or handle
	Trigger  string
	Queue    string
	Since    string // datetime-local or RFC 3339, UTC
	Until    string
	Search   string // a run id or an idempotency key
	Before   string // the cursor: "<id>@<RFC 3339 created_at>" of the last run of the previous page

	filter orcheo.RunFilter // what the strings above mean, workflow aside
}

// timeLayouts are the forms since and until take: the browser's
// datetime-local input (read as UTC) and RFC 3339.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339Nano}

func parseQueryTime(name, v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, orcheo.Errorf(orcheo.EINVALID, "%s %q is not a time like 2026-01-02T15:04 (UTC).", name, truncate(v, 40))
}

// parseRunsQuery reads and checks the filter of the runs page; the store's
// own Validate has the last word.
func parseRunsQuery(q url.Values) (runsQuery, error) {
	rq := runsQuery{
		Status:   strings.TrimSpace(q.Get("status")),
		Workflow: strings.TrimSpace(q.Get("workflow")),
		Trigger:  strings.TrimSpace(q.Get("trigger")),
		Queue:    strings.TrimSpace(q.Get("queue")),
		Since:    strings.TrimSpace(q.Get("since")),
		Until:    strings.TrimSpace(q.Get("until")),
		Search:   strings.TrimSpace(q.Get("q")),
		Before:   strings.TrimSpace(q.Get("before")),
	}
	f := &rq.filter
	f.Limit = runsPageSize
	if rq.Status != "" {
		st := orcheo.RunStatus(rq.Status)
		f.Status = &st
	}
	if rq.Trigger != "" {
		f.TriggeredBy = &rq.Trigger
	}
	if rq.Queue != "" {
		f.Queue = &rq.Queue
	}
	var err error
	if f.CreatedSince, err = parseQueryTime("Since", rq.Since); err != nil {
		return rq, err
	}
	if f.CreatedUntil, err = parseQueryTime("Until", rq.Until); err != nil {
		return rq, err
	}
	if rq.Search != "" {
		if orcheo.IsID(rq.Search) {
			f.ID = &rq.Search
		} else {
			f.IdempotencyKey = &rq.Search
		}
	}
	if rq.Before != "" {
		id, at, ok := strings.Cut(rq.Before, "@")
		t, err := time.Parse(time.RFC3339Nano, at)
		if !ok || err != nil || !orcheo.IsID(id) {
			return rq, orcheo.Errorf(orcheo.EINVALID, "The page position %q is not one this page made.", truncate(rq.Before, 80))
		}
		f.Before = &orcheo.RunCursor{CreatedAt: t, ID: id}
	}
	if len(rq.Workflow) > 100 || (rq.Workflow != "" && !orcheo.IsID(rq.Workflow) && !orcheo.IsHandle(rq.Workflow)) {
		return rq, orcheo.Errorf(orcheo.EINVALID, "Workflow %q is neither a workflow id nor a handle.", truncate(rq.Workflow, 80))
	}
	if err := f.Validate(); err != nil {
		return rq, err
	}
	return rq, nil
}

// values is the query string of rq, on the page after cursor (none: the
// first page).
func (rq runsQuery) values(before string) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"status": rq.Status, "workflow": rq.Workflow, "trigger": rq.Trigger,
		"queue": rq.Queue, "since": rq.Since, "until": rq.Until, "q": rq.Search, "before": before} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// cursorOf is the position after run, for the next page's link.
func cursorOf(run *orcheo.Run) string {
	return run.ID + "@" + run.CreatedAt.UTC().Format(time.RFC3339Nano)
}

// runsResult is one page of runs.
type runsResult struct {
	Runs []*orcheo.Run
	More bool
}

// findRuns reads the page rq names, a keyset page of the store's ListRuns
// (no count, the same cost at any depth); an unknown workflow is
// ENOTFOUND.
func (h *Handler) findRuns(ctx context.Context, rq runsQuery) (*runsResult, error) {
	f := rq.filter
	if rq.Workflow != "" {
		wf, err := h.cfg.Workflows.FindWorkflowByRef(ctx, rq.Workflow)
		if err != nil {
			return nil, err
		}
		f.WorkflowID = &wf.ID
	}
	runs, more, err := h.cfg.Runs.ListRuns(ctx, f)
	if err != nil {
		return nil, err
	}
	return &runsResult{Runs: runs, More: more}, nil
}

// runRow is one row of the runs table.
type runRow struct {
	*orcheo.Run
	Workflow string
	Duration string
	// Select shows the row's checkbox for the bulk actions (admin only).
	Select bool
}

// runsView is the runs page.
type runsView struct {
	Query     runsQuery
	Statuses  []orcheo.RunStatus
	Triggers  []string
	Workflows []*orcheo.Workflow
	Rows      []runRow
	Count     string
	Older     string // link to the next page, "" on the last
	Newest    string // link to the first page, "" on it
	Events    string // the live stream's URL
	Message   string
	CanAct    bool // the bulk actions are shown
	CSRF      string
	Back      string // this page, where the bulk action's results link back to
}

// handleRuns is the runs page: a table newest first, filtered by the query.
func (h *Handler) handleRuns(w http.ResponseWriter, r *http.Request, s *session) {
	view := &runsView{Statuses: orcheo.RunStatuses,
		Triggers: []string{orcheo.TriggerManual, orcheo.TriggerWebhook, orcheo.TriggerCron, orcheo.TriggerWorkflow}}
	view.Workflows = h.names.list(r.Context(), h)
	rq, err := parseRunsQuery(r.URL.Query())
	view.Query = rq
	if err != nil {
		view.Message = orcheo.ErrorMessage(err)
		h.render(w, r, http.StatusBadRequest, "runs", s, "Runs", view)
		return
	}
	res, err := h.findRuns(r.Context(), rq)
	if code := orcheo.ErrorCode(err); code == orcheo.ENOTFOUND || code == orcheo.EINVALID {
		view.Message = orcheo.ErrorMessage(err)
		h.render(w, r, statusOf(code), "runs", s, "Runs", view)
		return
	} else if err != nil {
		h.renderError(w, r, s, err)
		return
	}
	view.Rows = h.rows(r.Context(), res.Runs, s.canAct())
	view.CanAct, view.CSRF, view.Back = s.canAct(), s.csrfToken(), "/ui/runs?"+rq.values(rq.Before).Encode()
	view.Count = countText(rq, res)
	if res.More && len(res.Runs) > 0 {
		view.Older = "/ui/runs?" + rq.values(cursorOf(res.Runs[len(res.Runs)-1])).Encode()
	}
	if rq.Before != "" {
		view.Newest = "/ui/runs?" + rq.values("").Encode()
	}
	view.Events = "/ui/runs/events?" + rq.values(rq.Before).Encode()
	h.render(w, r, http.StatusOK, "runs", s, "Runs", view)
}

// rows turns runs into table rows, naming their workflows; selectable
// rows have a checkbox for the bulk actions.
func (h *Handler) rows(ctx context.Context, runs []*orcheo.Run, selectable bool) []runRow {
	names := h.names.byID(ctx, h)
	now := h.now()
	out := make([]runRow, len(runs))
	for i, run := range runs {
		name := names[run.WorkflowID]
		if name == "" {
			name = run.WorkflowID
		}
		out[i] = runRow{Run: run, Workflow: name, Duration: duration(run.StartedAt, run.CompletedAt, now), Select: selectable}
	}
	return out
}

// workflowNamesTTL is how long the workflow names are kept: a rename or a
// new workflow shows within it.
const workflowNamesTTL = 10 * time.Second

// workflowNamesMax bounds the workflows the names are read from.
const workflowNamesMax = 1000

// workflowNames caches the workflows' handles for the runs table and the
// workflow filter, so a live stream does not read them every second.
type workflowNames struct {
	mu      sync.Mutex
	read    time.Time
	all     []*orcheo.Workflow
	byIDMap map[string]string
}

func (n *workflowNames) load(ctx context.Context, h *Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.read.IsZero() && h.now().Sub(n.read) < workflowNamesTTL {
		return
	}
	wfs, _, err := h.cfg.Workflows.FindWorkflows(ctx, orcheo.WorkflowFilter{IncludeArchived: true, Limit: workflowNamesMax})
	if err != nil {
		h.cfg.Logger.WithError(err).Warn("read workflow names")
		return
	}
	n.all, n.byIDMap, n.read = wfs, make(map[string]string, len(wfs)), h.now()
	for _, wf := range wfs {
		n.byIDMap[wf.ID] = wf.Handle
	}
}

func (n *workflowNames) byID(ctx context.Context, h *Handler) map[string]string {
	n.load(ctx, h)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.byIDMap
}

func (n *workflowNames) list(ctx context.Context, h *Handler) []*orcheo.Workflow {
	n.load(ctx, h)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.all
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
