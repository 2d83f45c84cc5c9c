package server

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"
	"github.com/orcheo/orcheo"
)

// Bounds of the inspect routes.
const (
	scheduledLimitDefault = 100
	scheduledLimitMax     = 1000
	// shutdownNamesMax bounds the names one control request may carry.
	shutdownNamesMax = 1000
)

// registerWorkerRoutes adds the operators' routes, after Celery's inspect
// and control: GET routes need a read token, POST ones an admin token
// (requiredScopes).
func (s *Server) registerWorkerRoutes(r *mux.Router) {
	r.HandleFunc("/api/workers", s.handleWorkerList).Methods(http.MethodGet)
	r.HandleFunc("/api/inspect/scheduled", s.handleInspectScheduled).Methods(http.MethodGet)
	r.HandleFunc("/api/control/shutdown", s.handleControlShutdown).Methods(http.MethodPost)
}

// workerService is s.Workers, or EUNAVAILABLE while it is not set.
func (s *Server) workerService() (orcheo.WorkerService, error) {
	if s.Workers == nil {
		return nil, orcheo.Errorf(orcheo.EUNAVAILABLE, "the worker registry is not configured")
	}
	return s.Workers, nil
}

type workerListResponse struct {
	Workers []*orcheo.WorkerInfo `json:"workers"`
}

// handleWorkerList answers the online workers, by name, each with its
// runs in flight ("active"), its messages not yet started ("reserved")
// and its stats.
func (s *Server) handleWorkerList(w http.ResponseWriter, r *http.Request) {
	svc, err := s.workerService()
	if err != nil {
		Error(w, r, err)
		return
	}
	ws, err := svc.Workers(r.Context())
	if err != nil {
		Error(w, r, err)
		return
	}
	if ws == nil {
		ws = []*orcheo.WorkerInfo{}
	}
	encodeJSON(w, r, http.StatusOK, &workerListResponse{Workers: ws})
}

type scheduledResponse struct {
	Scheduled []*orcheo.ScheduledRun `json:"scheduled"`
}

// handleInspectScheduled answers the runs waiting for a due time, soonest
// first: each message of a delayed set (of the configured queues and the
// online workers' queues) whose run is pending, told apart by the
// database: "suspended" (its attempt waits at a delay node; due at its
// not_before), "retry" (a failed attempt granted another) or "delayed".
// ?limit= bounds it (default 100, at most 1000).
func (s *Server) handleInspectScheduled(w http.ResponseWriter, r *http.Request) {
	svc, err := s.workerService()
	if err != nil {
		Error(w, r, err)
		return
	}
	limit := scheduledLimitDefault
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > scheduledLimitMax {
			Error(w, r, orcheo.Errorf(orcheo.EINVALID, "limit must be 1-%d", scheduledLimitMax))
			return
		}
		limit = n
	}
	msgs, err := svc.Delayed(r.Context(), s.WorkerQueues, limit)
	if err != nil {
		Error(w, r, err)
		return
	}
	out := make([]*orcheo.ScheduledRun, 0, len(msgs))
	seen := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		if seen[m.RunID] {
			continue
		}
		seen[m.RunID] = true
		sr, err := s.scheduledRun(r.Context(), m)
		if err != nil {
			Error(w, r, err)
			return
		}
		if sr != nil {
			out = append(out, sr)
		}
	}
	encodeJSON(w, r, http.StatusOK, &scheduledResponse{Scheduled: out})
}

// scheduledRun tells what m's run waits for, from the store; nil when the
// run is no longer pending (a stale message its claim will skip) or gone.
func (s *Server) scheduledRun(ctx context.Context, m orcheo.DelayedMessage) (*orcheo.ScheduledRun, error) {
	run, err := s.Runs.FindRunByID(ctx, m.RunID)
	if orcheo.ErrorCode(err) == orcheo.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if run.Status != orcheo.RunPending {
		return nil, nil
	}
	sr := &orcheo.ScheduledRun{RunID: run.ID, WorkflowID: run.WorkflowID, Queue: m.Queue,
		Kind: orcheo.ScheduledDelayed, Attempt: run.Attempt, DueAt: m.DueAt}
	switch {
	case waitsAtDelay(run):
		sr.Kind = orcheo.ScheduledSuspended
	case run.Error != "":
		sr.Kind = orcheo.ScheduledRetry
	}
	if run.NotBefore != nil && sr.Kind != orcheo.ScheduledDelayed {
		sr.DueAt = run.NotBefore.UTC()
	}
	return sr, nil
}

// waitsAtDelay reports whether run's last attempt is parked at a delay
// node: its last step is waiting.
func waitsAtDelay(run *orcheo.Run) bool {
	var last *orcheo.RunStep
	for _, st := range run.Steps {
		if st != nil && st.Attempt == run.Attempt && (last == nil || st.Seq > last.Seq) {
			last = st
		}
	}
	return last != nil && last.Status == orcheo.StepWaiting
}

type shutdownRequest struct {
	// Workers names the workers to drain; empty or absent means all.
	Workers []string `json:"workers"`
}

type shutdownResponse struct {
	Shutdown []string `json:"shutdown"`
}

// handleControlShutdown asks workers to drain and exit, as SIGTERM does:
// body {"workers": ["name", …]}, or {} for every online worker. Answers
// 202 with the names told, or 404 (telling none) if a name is not online.
func (s *Server) handleControlShutdown(w http.ResponseWriter, r *http.Request) {
	svc, err := s.workerService()
	if err != nil {
		Error(w, r, err)
		return
	}
	var req shutdownRequest
	if err := decodeJSON(r, &req, true); err != nil {
		Error(w, r, err)
		return
	}
	if len(req.Workers) > shutdownNamesMax {
		Error(w, r, orcheo.Errorf(orcheo.EINVALID, "at most %d workers per request", shutdownNamesMax))
		return
	}
	for _, n := range req.Workers {
		if err := orcheo.CheckWorkerName(n); err != nil {
			Error(w, r, err)
			return
		}
	}
	told, err := svc.Shutdown(r.Context(), req.Workers)
	if err != nil {
		Error(w, r, err)
		return
	}
	if told == nil {
		told = []string{}
	}
	encodeJSON(w, r, http.StatusAccepted, &shutdownResponse{Shutdown: told})
}
