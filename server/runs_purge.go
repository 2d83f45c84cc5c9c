package server

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
)

// Bounds of one POST /api/runs/purge.
const (
	// purgeRequestBudget bounds the time one request spends deleting:
	// batches follow each other until one is short or this has passed,
	// and the answer says whether more remain (the CLI asks again). It
	// stays well inside the write timeout.
	purgeRequestBudget = 5 * time.Second
	// purgeDryRunMax bounds a dry run's count; "more" says it was reached.
	purgeDryRunMax = 1_000_000
	// purgeStatusesMax bounds the statuses a request may name.
	purgeStatusesMax = 8
)

func (s *Server) registerRunPurgeRoutes(r *mux.Router) {
	r.HandleFunc("/api/runs/purge", s.handleRunPurge).Methods(http.MethodPost)
}

// runPurgeRequest is the body of POST /api/runs/purge.
type runPurgeRequest struct {
	// OlderThan is an age such as "7d" or "12h" (orcheo.ParseAge): runs
	// that finished longer ago than that are deleted.
	OlderThan string `json:"older_than"`
	// Statuses, all terminal; empty means every terminal status.
	Statuses []orcheo.RunStatus `json:"statuses"`
	DryRun   bool               `json:"dry_run"`
}

// runPurgeResponse answers a purge: Count runs were deleted (or, with
// DryRun, would be), all of them finished before Before; More says that
// runs matching remain (the time budget or the dry run's bound ran out):
// send the same request again.
type runPurgeResponse struct {
	Count  int       `json:"count"`
	DryRun bool      `json:"dry_run"`
	Before time.Time `json:"before"`
	More   bool      `json:"more"`
}

// handleRunPurge deletes finished runs older than older_than, with their
// steps and events, in batches of orcheo.RunPurgeLimitDefault for up to
// purgeRequestBudget (admin scope, as every write). 400 for a missing or
// bad age or a status that is not terminal: a pending or running run is
// never purged. Retention (ORCHEO_RUN_RETENTION) does the same on its own.
func (s *Server) handleRunPurge(w http.ResponseWriter, r *http.Request) {
	var req runPurgeRequest
	if err := decodeJSON(r, &req, false); err != nil {
		Error(w, r, err)
		return
	}
	if req.OlderThan == "" {
		Error(w, r, orcheo.Errorf(orcheo.EINVALID, "older_than is required, such as 30d or 12h"))
		return
	}
	age, err := orcheo.ParseAge(req.OlderThan, false)
	if err != nil {
		Error(w, r, err)
		return
	}
	if len(req.Statuses) > purgeStatusesMax {
		Error(w, r, orcheo.Errorf(orcheo.EINVALID, "at most %d statuses", purgeStatusesMax))
		return
	}
	p := orcheo.RunPurge{Before: time.Now().Add(-age).UTC(), Statuses: req.Statuses, DryRun: req.DryRun}
	if err := p.Validate(); err != nil {
		Error(w, r, err)
		return
	}
	resp := runPurgeResponse{DryRun: req.DryRun, Before: p.Before}
	if req.DryRun {
		p.Limit = purgeDryRunMax
		if resp.Count, err = s.Runs.DeleteFinishedRuns(r.Context(), p); err != nil {
			Error(w, r, err)
			return
		}
		resp.More = resp.Count == purgeDryRunMax
		encodeJSON(w, r, http.StatusOK, resp)
		return
	}
	deadline := time.Now().Add(purgeRequestBudget)
	for {
		n, err := s.Runs.DeleteFinishedRuns(r.Context(), p)
		resp.Count += n
		if err != nil {
			// What was deleted stays deleted; the error says why the rest
			// was not, and a retry carries on.
			loggerFrom(r).WithError(err).WithField("deleted", resp.Count).Error("purge runs")
			Error(w, r, err)
			return
		}
		if n < p.Limit {
			break
		}
		if time.Now().After(deadline) {
			resp.More = true
			break
		}
	}
	loggerFrom(r).WithFields(logrus.Fields{"deleted": resp.Count, "before": resp.Before, "statuses": p.Statuses, "more": resp.More}).
		Info("runs purged")
	encodeJSON(w, r, http.StatusOK, resp)
}
