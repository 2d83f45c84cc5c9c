package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/orcheo/orcheo"
)

// Bounds of the workflow pages.
const (
	workflowsPageSize  = 100
	workflowsOffsetMax = 1_000_000
	// recentRunsShown is how many of a workflow's runs its page lists.
	recentRunsShown = 10
	// versionsShown bounds the versions the page lists, newest first.
	versionsShown = 50
	// cronSlotsShown is how many next cron slots the page lists.
	cronSlotsShown = 5
	// maxRunFormBytes bounds the run-now form: a run's input, as JSON.
	maxRunFormBytes = 256 << 10
	// maxRunInputBytes bounds the input itself.
	maxRunInputBytes = 200 << 10
)

// workflowsView is the workflow list.
type workflowsView struct {
	Workflows []*orcheo.Workflow
	Total     int
	Offset    int
	Prev      string
	Next      string
	Archived  bool
}

// handleWorkflows lists the workflows, newest first, a page at a time;
// ?archived=1 shows the archived ones too.
func (h *Handler) handleWorkflows(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	v := &workflowsView{Archived: q.Get("archived") == "1"}
	if o := q.Get("offset"); o != "" {
		n, err := strconv.Atoi(o)
		if err != nil || n < 0 || n > workflowsOffsetMax {
			h.renderError(w, r, s, orcheo.Errorf(orcheo.EINVALID, "The page position %q is not one this page made.", truncate(o, 20)))
			return
		}
		v.Offset = n
	}
	wfs, total, err := h.cfg.Workflows.FindWorkflows(r.Context(), orcheo.WorkflowFilter{IncludeArchived: v.Archived,
		Offset: v.Offset, Limit: workflowsPageSize})
	if err != nil {
		h.renderError(w, r, s, err)
		return
	}
	v.Workflows, v.Total = wfs, total
	link := func(offset int) string {
		u := url.Values{}
		if v.Archived {
			u.Set("archived", "1")
		}
		if offset > 0 {
			u.Set("offset", strconv.Itoa(offset))
		}
		if len(u) == 0 {
			return "/ui/workflows"
		}
		return "/ui/workflows?" + u.Encode()
	}
	if v.Offset > 0 {
		v.Prev = link(max(v.Offset-workflowsPageSize, 0))
	}
	if v.Offset+len(wfs) < total {
		v.Next = link(v.Offset + len(wfs))
	}
	h.render(w, r, http.StatusOK, "workflows", s, "Workflows", v)
}

// workflowView is a workflow's page.
type workflowView struct {
	Workflow   *orcheo.Workflow
	Version    *orcheo.WorkflowVersion // the one shown: the latest, or the chosen run's
	Latest     bool
	Definition string
	Graph      *graphView
	GraphRun   *orcheo.Run // the run whose path is highlighted
	GraphError string
	Versions   []*orcheo.WorkflowVersion
	// OlderVersions counts the versions not listed.
	OlderVersions int

	Webhook        *orcheo.WebhookConfigView
	WebhookURL     string
	WebhookHeaders []string // names only: values are not shown
	WebhookQuery   []string
	WebhookError   string

	Cron      *orcheo.CronTrigger
	CronSlots []cronSlot
	CronError string

	Runs []runRow

	CanAct  bool
	CSRF    string
	Input   string // the run-now form's input, kept after a refusal
	Key     string
	Message string // why the run-now form was refused
}

type cronSlot struct {
	Local string // in the trigger's zone
	UTC   string
	ISO   string
}

// workflowRef returns the {ref} route variable, or ENOTFOUND if it can be
// neither a workflow id nor a handle, so the store never sees it.
func workflowRef(r *http.Request) (string, error) {
	ref, err := url.PathUnescape(mux.Vars(r)["ref"])
	if err != nil || (!orcheo.IsID(ref) && !orcheo.IsHandle(ref)) {
		return "", orcheo.Errorf(orcheo.ENOTFOUND, "There is no workflow %q.", truncate(mux.Vars(r)["ref"], 80))
	}
	return ref, nil
}

// handleWorkflow is a workflow's page: its current version's definition
// and graph (?run=ID draws that run's version and marks the nodes it
// ran), versions, webhook, cron schedule with its next slots, recent runs
// and the run-now form.
func (h *Handler) handleWorkflow(w http.ResponseWriter, r *http.Request, s *session) {
	ref, err := workflowRef(r)
	if err != nil {
		h.renderError(w, r, s, err)
		return
	}
	runID := strings.TrimSpace(r.URL.Query().Get("run"))
	if runID != "" && !orcheo.IsID(runID) {
		h.renderError(w, r, s, orcheo.Errorf(orcheo.ENOTFOUND, "There is no run %q.", truncate(runID, 80)))
		return
	}
	v, err := h.workflowView(r, ref, runID, s)
	if err != nil {
		h.renderError(w, r, s, err)
		return
	}
	h.render(w, r, http.StatusOK, "workflow", s, "Workflow "+v.Workflow.Handle, v)
}

// workflowView reads what the workflow page shows. Only the workflow and
// its versions are required; a part that fails to read says so in place.
func (h *Handler) workflowView(r *http.Request, ref, runID string, s *session) (*workflowView, error) {
	ctx := r.Context()
	wf, err := h.cfg.Workflows.FindWorkflowByRef(ctx, ref)
	if orcheo.ErrorCode(err) == orcheo.ENOTFOUND {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "There is no workflow %q.", ref)
	} else if err != nil {
		return nil, err
	}
	v := &workflowView{Workflow: wf, CanAct: s.canAct() && !wf.Archived(), CSRF: s.csrfToken(), Input: "{}"}
	versions, err := h.cfg.Workflows.FindWorkflowVersions(ctx, wf.ID)
	if err != nil {
		return nil, err
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i].Version > versions[j].Version })
	v.Versions, v.OlderVersions = versions[:min(len(versions), versionsShown)], max(len(versions)-versionsShown, 0)
	versionID := wf.LatestVersionID
	steps := map[string]orcheo.StepStatus{}
	if runID != "" {
		run, err := h.cfg.Runs.FindRunByID(ctx, runID)
		if orcheo.ErrorCode(err) == orcheo.ENOTFOUND || (err == nil && run.WorkflowID != wf.ID) {
			return nil, orcheo.Errorf(orcheo.ENOTFOUND, "Workflow %s has no run %s.", wf.Handle, runID)
		} else if err != nil {
			return nil, err
		}
		v.GraphRun, versionID = run, run.VersionID
		for _, st := range run.Steps {
			if st.Attempt == run.Attempt {
				steps[st.Node] = st.Status
			}
		}
	}
	for _, ver := range versions {
		if ver.ID == versionID {
			v.Version = ver
		}
	}
	if v.Version == nil {
		if v.Version, err = h.cfg.Workflows.FindWorkflowVersionByID(ctx, versionID); err != nil {
			return nil, err
		}
	}
	v.Latest = v.Version.ID == wf.LatestVersionID
	v.Definition = prettyJSON(v.Version.Definition)
	if v.Graph, err = newGraph(v.Version.Definition, runID, steps); err != nil {
		h.cfg.Logger.WithError(err).WithField("version_id", v.Version.ID).Warn("workflow graph")
		v.GraphError = "This version's graph could not be read."
	}
	h.webhookPart(ctx, r, v)
	h.cronPart(ctx, v)
	runs, _, err := h.cfg.Runs.ListRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, Limit: recentRunsShown})
	if err != nil {
		return nil, err
	}
	v.Runs = h.rows(ctx, runs, false)
	return v, nil
}

// webhookPart fills in the webhook's URL and config, secrets masked: the
// view the API shows (WebhookConfigView holds no secret), and of the
// required headers and query parameters their names only, since their
// values act as shared secrets too.
func (h *Handler) webhookPart(ctx context.Context, r *http.Request, v *workflowView) {
	scheme := "http"
	if servedOverHTTPS(r) {
		scheme = "https"
	}
	v.WebhookURL = scheme + "://" + r.Host + "/api/workflows/" + v.Workflow.Handle + "/triggers/webhook"
	if h.cfg.Triggers == nil {
		v.WebhookError = "Webhook configs are not available here."
		return
	}
	cfg, err := h.cfg.Triggers.FindWebhookConfig(ctx, v.Workflow.ID)
	if err != nil {
		h.cfg.Logger.WithError(err).Warn("read webhook config")
		v.WebhookError = "The webhook config could not be read: " + orcheo.ErrorMessage(err)
		return
	}
	v.Webhook = cfg.View()
	for k := range v.Webhook.RequiredHeaders {
		v.WebhookHeaders = append(v.WebhookHeaders, k)
	}
	for k := range v.Webhook.RequiredQuery {
		v.WebhookQuery = append(v.WebhookQuery, k)
	}
	sort.Strings(v.WebhookHeaders)
	sort.Strings(v.WebhookQuery)
	v.Webhook.RequiredHeaders, v.Webhook.RequiredQuery = nil, nil
}

// cronPart fills in the cron trigger and its next slots, computed by the
// schedule package (CronScheduler.NextCronSlot), shown in its zone.
func (h *Handler) cronPart(ctx context.Context, v *workflowView) {
	if h.cfg.Cron == nil || h.cfg.CronScheduler == nil {
		v.CronError = "Cron triggers are not available here."
		return
	}
	t, err := h.cfg.Cron.FindCronTrigger(ctx, v.Workflow.ID)
	if orcheo.ErrorCode(err) == orcheo.ENOTFOUND {
		return
	} else if err != nil {
		h.cfg.Logger.WithError(err).Warn("read cron trigger")
		v.CronError = "The cron trigger could not be read: " + orcheo.ErrorMessage(err)
		return
	}
	v.Cron = t
	v.CronSlots, err = h.nextSlots(t, h.now(), cronSlotsShown)
	if err != nil {
		v.CronError = "The next slots could not be computed: " + orcheo.ErrorMessage(err)
	}
}

// nextSlots returns up to n slots of t after now, in t's zone.
func (h *Handler) nextSlots(t *orcheo.CronTrigger, now time.Time, n int) ([]cronSlot, error) {
	loc, err := t.Location()
	if err != nil {
		return nil, err
	}
	var out []cronSlot
	after := now
	for len(out) < n {
		next, err := h.cfg.CronScheduler.NextCronSlot(t, after)
		if err != nil {
			return out, err
		}
		if next.IsZero() {
			break
		}
		out = append(out, cronSlot{Local: next.In(loc).Format("Mon 2006-01-02 15:04:05 MST"), UTC: formatTime(next),
			ISO: next.UTC().Format(time.RFC3339)})
		after = next
	}
	return out, nil
}

// handleWorkflowRun starts a manual run with the form's JSON input, as
// POST /api/workflows/{ref}/runs does: through the process's RunSubmitter,
// which refuses an archived workflow and stores and publishes the run. A
// bad input is refused with a message on the workflow's page.
func (h *Handler) handleWorkflowRun(w http.ResponseWriter, r *http.Request, s *session) {
	ref, err := workflowRef(r)
	if err != nil {
		h.renderError(w, r, s, err)
		return
	}
	input := strings.TrimSpace(r.PostForm.Get("input"))
	key := strings.TrimSpace(r.PostForm.Get("idempotency_key"))
	refuse := func(status int, msg string) {
		v, err := h.workflowView(r, ref, "", s)
		if err != nil {
			h.renderError(w, r, s, err)
			return
		}
		v.Input, v.Key, v.Message = input, key, msg
		h.render(w, r, status, "workflow", s, "Workflow "+v.Workflow.Handle, v)
	}
	if input == "" {
		input = "{}"
	}
	switch {
	case len(input) > maxRunInputBytes:
		refuse(http.StatusRequestEntityTooLarge, "The input is larger than 200 KiB.")
		return
	case !json.Valid([]byte(input)):
		refuse(http.StatusBadRequest, "The input is not valid JSON: "+jsonError(input))
		return
	case len(key) > 255:
		refuse(http.StatusBadRequest, "The idempotency key is longer than 255 characters.")
		return
	}
	wf, err := h.cfg.Workflows.FindWorkflowByRef(r.Context(), ref)
	if err != nil {
		h.renderError(w, r, s, err)
		return
	}
	run, created, err := h.cfg.Submitter.SubmitRun(r.Context(), wf,
		&orcheo.Run{TriggeredBy: orcheo.TriggerManual, Input: json.RawMessage(input), IdempotencyKey: key})
	if code := orcheo.ErrorCode(err); code == orcheo.EINVALID || code == orcheo.ECONFLICT || code == orcheo.ETOOLARGE {
		refuse(statusOf(code), orcheo.ErrorMessage(err))
		return
	} else if err != nil {
		h.renderError(w, r, s, err)
		return
	}
	h.cfg.Logger.WithFields(map[string]any{"run_id": run.ID, "workflow_id": wf.ID, "token": s.name, "created": created}).Info("ui run now")
	done := "started"
	if !created {
		done = "existing"
	}
	http.Redirect(w, r, "/ui/runs/"+run.ID+"?done="+done, http.StatusSeeOther)
}

// jsonError says where input stops being JSON.
func jsonError(input string) string {
	var v any
	err := json.Unmarshal([]byte(input), &v)
	if se, ok := err.(*json.SyntaxError); ok {
		return se.Error() + " (at byte " + strconv.FormatInt(se.Offset, 10) + ")"
	}
	if err != nil {
		return err.Error()
	}
	return "it is not one JSON value"
}
