package ui

import (
	"context"
	"net/http"
	"net/url"
	"sort"

	"github.com/gorilla/mux"
	"github.com/orcheo/orcheo"
)

// attemptView is one attempt's steps, newest attempt first on the page.
type attemptView struct {
	Attempt int
	Current bool
	Steps   []stepView
}

type stepView struct {
	*orcheo.RunStep
	Duration string
}

// runView is the run detail page and what its live stream sends.
type runView struct {
	Run       *orcheo.Run
	Workflow  string
	Duration  string
	Attempts  []attemptView
	CanAct    bool
	CSRF      string
	CanCancel bool
	CanRetry  bool
	Events    string
	Message   string
	Notice    string
}

// runPathID returns the {id} route variable, or ENOTFOUND if it cannot be
// a run id, so the store never sees a malformed one.
func runPathID(r *http.Request) (string, error) {
	id, err := url.PathUnescape(mux.Vars(r)["id"])
	if err != nil || !orcheo.IsID(id) {
		return "", orcheo.Errorf(orcheo.ENOTFOUND, "There is no run %q.", truncate(mux.Vars(r)["id"], 80))
	}
	return id, nil
}

// runView reads run id and builds its view for session s.
func (h *Handler) runView(ctx context.Context, id string, s *session) (*runView, error) {
	run, err := h.cfg.Runs.FindRunByID(ctx, id)
	if orcheo.ErrorCode(err) == orcheo.ENOTFOUND {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "There is no run %s.", id)
	} else if err != nil {
		return nil, err
	}
	return h.newRunView(ctx, run, s), nil
}

func (h *Handler) newRunView(ctx context.Context, run *orcheo.Run, s *session) *runView {
	now := h.now()
	v := &runView{Run: run, Workflow: h.names.byID(ctx, h)[run.WorkflowID],
		Duration: duration(run.StartedAt, run.CompletedAt, now), CanAct: s.canAct(), CSRF: s.csrfToken(),
		Events: "/ui/runs/events?run=" + run.ID}
	if v.Workflow == "" {
		v.Workflow = run.WorkflowID
	}
	v.CanCancel = v.CanAct && (run.Status == orcheo.RunPending || (run.Status == orcheo.RunRunning && !run.CancelRequested))
	v.CanRetry = v.CanAct && (run.Status == orcheo.RunFailed || run.Status == orcheo.RunCancelled)
	byAttempt := map[int][]stepView{}
	for _, st := range run.Steps {
		byAttempt[st.Attempt] = append(byAttempt[st.Attempt], stepView{RunStep: st, Duration: duration(&st.StartedAt, st.CompletedAt, now)})
	}
	for a, steps := range byAttempt {
		sort.Slice(steps, func(i, j int) bool { return steps[i].Seq < steps[j].Seq })
		v.Attempts = append(v.Attempts, attemptView{Attempt: a, Current: a == run.Attempt, Steps: steps})
	}
	sort.Slice(v.Attempts, func(i, j int) bool { return v.Attempts[i].Attempt > v.Attempts[j].Attempt })
	return v
}

// notices are the fixed messages an action's redirect may ask the run
// page to show; the query names one, never its text.
var notices = map[string]string{
	"cancelled":        "The run was cancelled.",
	"cancel-requested": "Cancel requested: the worker running it stops at the next node.",
	"retried":          "A new attempt was queued.",
	"started":          "The run was started.",
	"existing":         "A run with that idempotency key already exists; this is it.",
}

// handleRun is the run detail page.
func (h *Handler) handleRun(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := runPathID(r)
	if err != nil {
		h.renderError(w, r, s, err)
		return
	}
	v, err := h.runView(r.Context(), id, s)
	if err != nil {
		h.renderError(w, r, s, err)
		return
	}
	v.Notice = notices[r.URL.Query().Get("done")]
	h.render(w, r, http.StatusOK, "run", s, "Run "+shortID(id), v)
}

// control is the one way runs are cancelled and retried by hand, shared
// with the API (orcheo.RunControl): a retried run is published through the
// process's RunSubmitter, a cancelled running run's worker is told.
func (h *Handler) control() orcheo.RunControl {
	return orcheo.RunControl{Runs: h.cfg.Runs, Submitter: h.cfg.Submitter, Cancels: h.cfg.Cancels,
		NotifyFailed: func(id string, err error) {
			h.cfg.Logger.WithError(err).WithField("run_id", id).Warn("notify cancel; the worker finds it at its next check")
		}}
}

// handleRunCancel cancels a run as POST /api/runs/{id}/cancel does.
func (h *Handler) handleRunCancel(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := runPathID(r)
	if err != nil {
		h.renderError(w, r, s, err)
		return
	}
	run, err := h.control().Cancel(r.Context(), id)
	if err != nil {
		h.actionFailed(w, r, s, id, err)
		return
	}
	done := "cancelled"
	if run.Status == orcheo.RunRunning {
		done = "cancel-requested"
	}
	h.cfg.Logger.WithFields(map[string]any{"run_id": run.ID, "token": s.name}).Info("ui cancel")
	http.Redirect(w, r, "/ui/runs/"+run.ID+"?done="+done, http.StatusSeeOther)
}

// handleRunRetry starts a new attempt as POST /api/runs/{id}/retry does.
func (h *Handler) handleRunRetry(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := runPathID(r)
	if err != nil {
		h.renderError(w, r, s, err)
		return
	}
	run, err := h.control().Retry(r.Context(), id)
	if err != nil {
		h.actionFailed(w, r, s, id, err)
		return
	}
	h.cfg.Logger.WithFields(map[string]any{"run_id": run.ID, "token": s.name}).Info("ui retry")
	http.Redirect(w, r, "/ui/runs/"+run.ID+"?done=retried", http.StatusSeeOther)
}

// actionFailed shows the run page again with why the action was refused
// (a run that already ended: 409), or the error page if the run is gone.
func (h *Handler) actionFailed(w http.ResponseWriter, r *http.Request, s *session, id string, err error) {
	code := orcheo.ErrorCode(err)
	if code == orcheo.EINTERNAL || code == orcheo.ENOTFOUND {
		h.renderError(w, r, s, err)
		return
	}
	v, verr := h.runView(r.Context(), id, s)
	if verr != nil {
		h.renderError(w, r, s, verr)
		return
	}
	v.Message = orcheo.ErrorMessage(err)
	h.render(w, r, statusOf(code), "run", s, "Run "+shortID(id), v)
}
