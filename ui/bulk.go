package ui

import (
	"net/http"
	"strings"

	"github.com/orcheo/orcheo"
)

// bulkMax bounds the runs one bulk action takes: more than a page of the
// runs table holds.
const bulkMax = 2 * runsPageSize

// Outcomes of one run of a bulk action, as POST /api/runs/retry|cancel
// names them.
const (
	bulkRetried         = "retried"
	bulkCancelled       = "cancelled"
	bulkCancelRequested = "cancel requested"
	bulkWouldRetry      = "will be retried"
	bulkWouldCancel     = "will be cancelled"
	bulkWouldRequest    = "will be asked to stop (running)"
	bulkRefused         = "refused"
	bulkError           = "error"
	bulkNotTried        = "not tried"
)

// bulkView is the confirmation step of a bulk action, or its results.
type bulkView struct {
	Action  string // "retry" or "cancel"
	Verb    string // "Retry" or "Cancel"
	Done    bool   // the results, not the confirmation
	Rows    []bulkRow
	Count   int // the runs the action applies (or applied) to
	Back    string
	CSRF    string
	Message string
}

type bulkRow struct {
	ID       string
	Status   orcheo.RunStatus
	Workflow string
	Outcome  string
	Error    string
	OK       bool
}

// handleRunsBulk retries or cancels the runs selected on the runs page.
// The first POST shows what would happen to each and asks to confirm; the
// second (confirm=yes) acts on each run through orcheo.RunControl, the
// same calls as POST /api/runs/retry|cancel, and shows each outcome. A
// store failure stops at that run, as the API's bulk routes do.
func (h *Handler) handleRunsBulk(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	v := &bulkView{Action: f.Get("action"), CSRF: s.csrfToken(), Back: localPath(f.Get("back"))}
	switch v.Action {
	case "retry":
		v.Verb = "Retry"
	case "cancel":
		v.Verb = "Cancel"
	default:
		h.renderError(w, r, s, orcheo.Errorf(orcheo.EINVALID, "Choose retry or cancel."))
		return
	}
	var ids []string
	seen := map[string]bool{}
	for _, id := range f["id"] {
		id = strings.TrimSpace(id)
		if !orcheo.IsID(id) {
			h.renderError(w, r, s, orcheo.Errorf(orcheo.EINVALID, "%q is not a run id.", truncate(id, 80)))
			return
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		v.Message = "Select at least one run on the runs page first."
		h.render(w, r, http.StatusBadRequest, "bulk", s, v.Verb+" runs", v)
		return
	}
	if len(ids) > bulkMax {
		v.Message = "At most 100 runs at once; select fewer, or use orcheo runs " + v.Action + " with a filter."
		h.render(w, r, http.StatusBadRequest, "bulk", s, v.Verb+" runs", v)
		return
	}
	names := h.names.byID(r.Context(), h)
	if f.Get("confirm") != "yes" {
		for _, id := range ids {
			row := bulkRow{ID: id}
			run, err := h.cfg.Runs.FindRunByID(r.Context(), id)
			switch {
			case orcheo.ErrorCode(err) == orcheo.ENOTFOUND:
				row.Outcome, row.Error = bulkRefused, "There is no such run."
			case err != nil:
				h.renderError(w, r, s, err)
				return
			default:
				row.Status, row.Workflow = run.Status, names[run.WorkflowID]
				row.Outcome, row.Error = wouldDo(v.Action, run)
				row.OK = row.Error == ""
			}
			if row.OK {
				v.Count++
			}
			v.Rows = append(v.Rows, row)
		}
		if v.Count == 0 {
			v.Message = "None of the selected runs can be " + map[string]string{"retry": "retried", "cancel": "cancelled"}[v.Action] + "."
		}
		h.render(w, r, http.StatusOK, "bulk", s, v.Verb+" runs", v)
		return
	}
	v.Done = true
	ctl := h.control()
	stopped := false
	for _, id := range ids {
		row := bulkRow{ID: id}
		if stopped {
			row.Outcome, row.Error = bulkNotTried, "Not tried after the error above."
			v.Rows = append(v.Rows, row)
			continue
		}
		var run *orcheo.Run
		var err error
		if v.Action == "retry" {
			run, err = ctl.Retry(r.Context(), id)
		} else {
			run, err = ctl.Cancel(r.Context(), id)
		}
		switch code := orcheo.ErrorCode(err); {
		case err == nil:
			row.Status, row.Workflow, row.OK = run.Status, names[run.WorkflowID], true
			row.Outcome = bulkRetried
			if v.Action == "cancel" {
				row.Outcome = bulkCancelled
				if run.Status == orcheo.RunRunning {
					row.Outcome = bulkCancelRequested
				}
			}
			v.Count++
		case code == orcheo.ECONFLICT || code == orcheo.ENOTFOUND:
			row.Outcome, row.Error = bulkRefused, orcheo.ErrorMessage(err)
		default:
			h.cfg.Logger.WithError(err).WithField("run_id", id).Warn("ui bulk action stopped at this run")
			row.Outcome, row.Error = bulkError, "The store failed; the runs after this one were not tried."
			if code == orcheo.EUNAVAILABLE {
				row.Error = orcheo.ErrorMessage(err) + " The runs after this one were not tried."
			}
			stopped = true
		}
		v.Rows = append(v.Rows, row)
	}
	h.cfg.Logger.WithFields(map[string]any{"action": v.Action, "runs": len(ids), "done": v.Count, "token": s.name}).Info("ui bulk action")
	h.render(w, r, http.StatusOK, "bulk", s, v.Verb+" runs", v)
}

// wouldDo says what action would do to run, or why it would be refused,
// as the API's dry run does.
func wouldDo(action string, run *orcheo.Run) (outcome, refusal string) {
	if action == "retry" {
		if run.Status == orcheo.RunFailed || run.Status == orcheo.RunCancelled {
			return bulkWouldRetry, ""
		}
		return bulkRefused, "Run is " + string(run.Status) + ": only failed or cancelled runs can be retried."
	}
	switch run.Status {
	case orcheo.RunPending:
		return bulkWouldCancel, ""
	case orcheo.RunRunning:
		if run.CancelRequested {
			return bulkRefused, "Its cancel was already requested."
		}
		return bulkWouldRequest, ""
	}
	return bulkRefused, "Run already ended (" + string(run.Status) + ")."
}
