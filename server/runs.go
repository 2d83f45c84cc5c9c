package server

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/orcheo/orcheo"
)

func (s *Server) registerRunRoutes(r *mux.Router) {
	r.HandleFunc("/api/workflows/{ref}/runs", s.handleRunCreate).Methods(http.MethodPost)
	r.HandleFunc("/api/runs", s.handleRunList).Methods(http.MethodGet)
	r.HandleFunc("/api/runs/retry", s.handleRunBulkRetry).Methods(http.MethodPost)
	r.HandleFunc("/api/runs/cancel", s.handleRunBulkCancel).Methods(http.MethodPost)
	r.HandleFunc("/api/runs/{id}", s.handleRunView).Methods(http.MethodGet)
	r.HandleFunc("/api/runs/{id}/cancel", s.handleRunCancel).Methods(http.MethodPost)
	r.HandleFunc("/api/runs/{id}/retry", s.handleRunRetry).Methods(http.MethodPost)
}

// idempotencyHeader dedupes run creation, on manual runs and webhooks.
const idempotencyHeader = "Idempotency-Key"

type runCreateRequest struct {
	Input          json.RawMessage `json:"input"`
	IdempotencyKey string          `json:"idempotency_key"`
}

// handleRunCreate starts a manual run of the workflow's latest version: 202
// with the new run, or 200 with the earlier run when the idempotency key
// (body field or Idempotency-Key header) was used before. An empty body
// means input {}.
func (s *Server) handleRunCreate(w http.ResponseWriter, r *http.Request) {
	var req runCreateRequest
	if err := decodeJSON(r, &req, true); err != nil {
		Error(w, r, err)
		return
	}
	key := req.IdempotencyKey
	if h := r.Header.Get(idempotencyHeader); h != "" {
		if key != "" && key != h {
			Error(w, r, orcheo.Errorf(orcheo.EINVALID, "idempotency_key and the Idempotency-Key header differ"))
			return
		}
		key = h
	}
	input := req.Input
	if len(input) == 0 || string(input) == "null" {
		input = json.RawMessage(`{}`)
	}
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		Error(w, r, err)
		return
	}
	run, created, err := s.startRun(r, wf, orcheo.TriggerManual, input, key)
	if err != nil {
		Error(w, r, err)
		return
	}
	encodeJSON(w, r, runStatus(created), run)
}

// runStatus is 202 for a new run and 200 for an idempotent repeat.
func runStatus(created bool) int {
	if created {
		return http.StatusAccepted
	}
	return http.StatusOK
}

// startRun submits a run of wf's latest version (manual calls and
// webhooks). The submitter holds the rules: the archived check, and the
// promise that a run returned here is stored and will execute (published,
// or left to the requeuer when publishing failed). When key was used
// before, the existing run is returned with created=false.
func (s *Server) startRun(r *http.Request, wf *orcheo.Workflow, trigger string, input json.RawMessage, key string) (run *orcheo.Run, created bool, err error) {
	return s.Submitter.SubmitRun(r.Context(), wf, &orcheo.Run{TriggeredBy: trigger, Input: input, IdempotencyKey: key})
}

// runID returns the {id} route variable, or ENOTFOUND if it cannot be an id
// (so the store never sees a malformed one).
func runID(r *http.Request) (string, error) {
	id := pathVar(r, "id")
	if !orcheo.IsID(id) {
		return "", orcheo.Errorf(orcheo.ENOTFOUND, "run %q not found", id)
	}
	return id, nil
}

// handleRunView returns one run with its steps.
func (s *Server) handleRunView(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	run, err := s.Runs.FindRunByID(r.Context(), id)
	if err != nil {
		Error(w, r, err)
		return
	}
	encodeJSON(w, r, http.StatusOK, run)
}

// handleRunCancel cancels a run: 200 with the cancelled run if it was
// pending; 202 with the run still running and cancel_requested=true if it
// was running (the worker holding it is notified and ends it cancelled);
// 409 if it already ended.
func (s *Server) handleRunCancel(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	run, err := s.cancelRun(r, id)
	if err != nil {
		Error(w, r, err)
		return
	}
	if run.Status != orcheo.RunRunning {
		encodeJSON(w, r, http.StatusOK, run)
		return
	}
	encodeJSON(w, r, http.StatusAccepted, run)
}

// cancelRun cancels run id, as handleRunCancel and the bulk cancel do,
// through orcheo.RunControl (which the web UI calls too): the run comes
// back cancelled if it was pending, or still running with CancelRequested,
// its worker notified; ECONFLICT if it already ended.
func (s *Server) cancelRun(r *http.Request, id string) (*orcheo.Run, error) {
	return s.runControl(r).Cancel(r.Context(), id)
}

// runControl is the one way runs are cancelled and retried by hand, with
// a failed cancel notice logged on the request's logger. The stored flag
// makes a lost notice only a delay until the worker's next check.
func (s *Server) runControl(r *http.Request) orcheo.RunControl {
	return orcheo.RunControl{Runs: s.Runs, Submitter: s.Submitter, Cancels: s.Cancels,
		NotifyFailed: func(id string, err error) {
			loggerFrom(r).WithError(err).WithField("run_id", id).Warn("notify cancel; the worker finds it at its next check")
		}}
}

// handleRunRetry starts a new attempt of a failed or cancelled run: 202
// with the run pending again, enqueued; 409 for any other status. A failed
// enqueue is left to the requeuer, as for new runs.
func (s *Server) handleRunRetry(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	run, err := s.retryRun(r, id)
	if err != nil {
		Error(w, r, err)
		return
	}
	encodeJSON(w, r, http.StatusAccepted, run)
}

// retryRun starts a new attempt of run id and publishes it, as
// handleRunRetry and the bulk retry do, through orcheo.RunControl: a
// failed publish is marked for the requeuer and the run is still answered
// 202; ECONFLICT unless it is failed or cancelled.
func (s *Server) retryRun(r *http.Request, id string) (*orcheo.Run, error) {
	return s.runControl(r).Retry(r.Context(), id)
}
