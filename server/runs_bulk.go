package server

import (
	"net/http"

	"github.com/orcheo/orcheo"
)

// bulkLimitMax bounds the runs one bulk call acts on; a caller with more
// follows next_cursor (orcheo runs retry/cancel loop on more).
const bulkLimitMax = 1000

// runBulkRequest is the body of POST /api/runs/retry and /api/runs/cancel:
// a filter (runFilterParams' fields), and how to go through what it selects.
type runBulkRequest struct {
	runFilterParams
	// All allows a filter that selects every run; without it such a
	// filter is refused, so an empty body never retries or cancels
	// everything.
	All bool `json:"all"`
	// DryRun reports what would happen to each run and changes nothing.
	DryRun bool `json:"dry_run"`
	// Limit bounds the runs of this call: 0 means bulkLimitMax.
	Limit int `json:"limit"`
	// Cursor is the previous call's next_cursor.
	Cursor string `json:"cursor"`
}

// Outcomes of one run in a bulk answer.
const (
	bulkRetried         = "retried"
	bulkCancelled       = "cancelled"
	bulkCancelRequested = "cancel_requested"
	bulkWouldRetry      = "would_retry"
	bulkWouldCancel     = "would_cancel"
	bulkWouldRequest    = "would_request_cancel"
	// bulkRefused: the run is not in a status the action applies to (the
	// single route's 409) or is gone; Error says why.
	bulkRefused = "refused"
	// bulkError: the store failed; the call stopped at this run, and
	// more is false so that a loop stops too.
	bulkError = "error"
)

// runBulkResult is what happened to one matched run.
type runBulkResult struct {
	ID string `json:"id"`
	// Status is the run's status after the action (on a dry run, now).
	Status  orcheo.RunStatus `json:"status"`
	Outcome string           `json:"outcome"`
	Error   string           `json:"error,omitempty"`
}

type runBulkResponse struct {
	DryRun bool            `json:"dry_run"`
	Runs   []runBulkResult `json:"runs"`
	// More says more runs matched after these; call again with
	// cursor=NextCursor.
	More       bool   `json:"more"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// handleRunBulkRetry retries every failed or cancelled run the filter
// selects, each through retryRun as POST /api/runs/{id}/retry does; a run
// in any other status is refused on its own line.
func (s *Server) handleRunBulkRetry(w http.ResponseWriter, r *http.Request) {
	s.handleRunBulk(w, r, func(run *orcheo.Run, dryRun bool) runBulkResult {
		if dryRun {
			if run.Status == orcheo.RunFailed || run.Status == orcheo.RunCancelled {
				return runBulkResult{Outcome: bulkWouldRetry}
			}
			return runBulkResult{Outcome: bulkRefused, Error: "run is " + string(run.Status) + ": only failed or cancelled runs can be retried"}
		}
		got, err := s.retryRun(r, run.ID)
		if err != nil {
			return bulkFailure(r, run.ID, err)
		}
		return runBulkResult{Status: got.Status, Outcome: bulkRetried}
	})
}

// handleRunBulkCancel cancels every pending or running run the filter
// selects, each through cancelRun as POST /api/runs/{id}/cancel does (a
// running run's worker is told); a run that already ended is refused on
// its own line.
func (s *Server) handleRunBulkCancel(w http.ResponseWriter, r *http.Request) {
	s.handleRunBulk(w, r, func(run *orcheo.Run, dryRun bool) runBulkResult {
		if dryRun {
			switch run.Status {
			case orcheo.RunPending:
				return runBulkResult{Outcome: bulkWouldCancel}
			case orcheo.RunRunning:
				return runBulkResult{Outcome: bulkWouldRequest}
			}
			return runBulkResult{Outcome: bulkRefused, Error: "run already ended (" + string(run.Status) + ")"}
		}
		got, err := s.cancelRun(r, run.ID)
		if err != nil {
			return bulkFailure(r, run.ID, err)
		}
		if got.Status == orcheo.RunRunning {
			return runBulkResult{Status: got.Status, Outcome: bulkCancelRequested}
		}
		return runBulkResult{Status: got.Status, Outcome: bulkCancelled}
	})
}

// bulkFailure is the outcome of run id whose store call failed with err: a
// refusal with the application error's message, or bulkError, logged here,
// whose message is only "Internal error" unless the store is unavailable.
func bulkFailure(r *http.Request, id string, err error) runBulkResult {
	switch orcheo.ErrorCode(err) {
	case orcheo.ECONFLICT, orcheo.ENOTFOUND:
		return runBulkResult{Outcome: bulkRefused, Error: orcheo.ErrorMessage(err)}
	}
	loggerFrom(r).WithError(err).WithField("run_id", id).Warn("bulk action stopped at this run")
	if orcheo.ErrorCode(err) == orcheo.EUNAVAILABLE {
		return runBulkResult{Outcome: bulkError, Error: orcheo.ErrorMessage(err)}
	}
	return runBulkResult{Outcome: bulkError, Error: "Internal error"}
}

// handleRunBulk selects one page of runs by the request's filter and applies
// act to each, in the list's order (newest first), answering 200 with each
// run's outcome. A filter that selects every run needs all: true (400
// otherwise), and a filter value is checked as GET /api/runs checks it.
func (s *Server) handleRunBulk(w http.ResponseWriter, r *http.Request, act func(run *orcheo.Run, dryRun bool) runBulkResult) {
	var req runBulkRequest
	if err := decodeJSON(r, &req, false); err != nil {
		Error(w, r, err)
		return
	}
	if req.Limit < 0 || req.Limit > bulkLimitMax {
		Error(w, r, orcheo.Errorf(orcheo.EINVALID, "limit must be an integer from 0 to %d", bulkLimitMax))
		return
	}
	if req.Limit == 0 {
		req.Limit = bulkLimitMax
	}
	before, err := decodeCursor(req.Cursor)
	if err != nil {
		Error(w, r, err)
		return
	}
	filter, err := s.runFilter(r.Context(), req.runFilterParams)
	if err != nil {
		Error(w, r, err)
		return
	}
	if filter.Empty() && !req.All {
		Error(w, r, orcheo.Errorf(orcheo.EINVALID, "the filter selects every run: give status, workflow, trigger, queue, since, until, id or idempotency_key, or all: true to mean every run"))
		return
	}
	filter.Limit, filter.Before = req.Limit, before
	runs, more, err := s.Runs.ListRuns(r.Context(), filter)
	if err != nil {
		Error(w, r, err)
		return
	}
	resp := &runBulkResponse{DryRun: req.DryRun, Runs: make([]runBulkResult, 0, len(runs))}
	for i, run := range runs {
		res := act(run, req.DryRun)
		res.ID = run.ID
		if res.Status == "" {
			res.Status = run.Status
		}
		resp.Runs = append(resp.Runs, res)
		if res.Outcome == bulkError {
			// What follows was not tried: the caller sees this run's
			// error and decides, rather than a loop going on against a
			// failing store.
			resp.More = false
			encodeJSON(w, r, http.StatusOK, resp)
			return
		}
		if i == len(runs)-1 && more {
			resp.More, resp.NextCursor = true, encodeCursor(run)
		}
	}
	encodeJSON(w, r, http.StatusOK, resp)
}
