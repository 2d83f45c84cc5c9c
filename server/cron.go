package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/orcheo/orcheo"
)

func (s *Server) registerCronRoutes(r *mux.Router) {
	r.HandleFunc("/api/workflows/{ref}/triggers/cron/config", s.cronReady(s.handleCronConfigView)).Methods(http.MethodGet)
	r.HandleFunc("/api/workflows/{ref}/triggers/cron/config", s.cronReady(s.handleCronConfigUpdate)).Methods(http.MethodPut)
	r.HandleFunc("/api/workflows/{ref}/triggers/cron/config", s.cronReady(s.handleCronConfigDelete)).Methods(http.MethodDelete)
	r.HandleFunc("/api/triggers/cron", s.cronReady(s.handleCronList)).Methods(http.MethodGet)
	r.HandleFunc("/api/triggers/cron/dispatch", s.cronReady(s.handleCronDispatch)).Methods(http.MethodPost)
}

// cronReady answers EUNAVAILABLE instead of calling h unless the cron
// services are set: a server built without them (some tests) has no cron
// routes to offer. The check runs per request because cmd assigns the
// services after NewServer has registered the routes.
func (s *Server) cronReady(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Cron == nil || s.CronScheduler == nil || s.CronDispatcher == nil {
			Error(w, r, orcheo.Errorf(orcheo.EUNAVAILABLE, "cron triggers are not configured on this server"))
			return
		}
		h(w, r)
	}
}

// cronConfigRequest is the body of PUT …/triggers/cron/config. Times are
// strings so that a bad one is reported with its field name.
type cronConfigRequest struct {
	Expression       string               `json:"expression"`
	Timezone         string               `json:"timezone"`
	AllowOverlapping bool                 `json:"allow_overlapping"`
	StartAt          *string              `json:"start_at"`
	EndAt            *string              `json:"end_at"`
	Catchup          orcheo.CatchupPolicy `json:"catchup"`
	CatchupLimit     int                  `json:"catchup_limit"`
}

// parseTimeField parses an optional RFC 3339 time; EINVALID names field.
func parseTimeField(field string, v *string) (*time.Time, error) {
	if v == nil || strings.TrimSpace(*v) == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(*v))
	if err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "%s: %q is not an RFC 3339 time such as 2025-01-31T09:00:00Z", field, *v)
	}
	return &t, nil
}

// withNext fills in t.NextAt, the next slot after now, for display.
func (s *Server) withNext(t *orcheo.CronTrigger) *orcheo.CronTrigger {
	if next, err := s.CronScheduler.NextCronSlot(t, time.Now()); err == nil && !next.IsZero() {
		next = next.UTC()
		t.NextAt = &next
	}
	return t
}

// handleCronConfigView returns the workflow's cron trigger: 404 if the
// workflow or its trigger does not exist.
func (s *Server) handleCronConfigView(w http.ResponseWriter, r *http.Request) {
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		Error(w, r, err)
		return
	}
	t, err := s.Cron.FindCronTrigger(r.Context(), wf.ID)
	if err != nil {
		Error(w, r, err)
		return
	}
	encodeJSON(w, r, http.StatusOK, s.withNext(t))
}

// handleCronConfigUpdate creates or replaces the trigger: 400 naming the
// field for a bad expression, zone, window or catch-up (nothing stored),
// 404 for an unknown workflow, 409 for an archived one.
func (s *Server) handleCronConfigUpdate(w http.ResponseWriter, r *http.Request) {
	var req cronConfigRequest
	if err := decodeJSON(r, &req, false); err != nil {
		Error(w, r, err)
		return
	}
	t := &orcheo.CronTrigger{Expression: req.Expression, Timezone: req.Timezone, AllowOverlapping: req.AllowOverlapping,
		Catchup: req.Catchup, CatchupLimit: req.CatchupLimit}
	var err error
	if t.StartAt, err = parseTimeField("start_at", req.StartAt); err != nil {
		Error(w, r, err)
		return
	}
	if t.EndAt, err = parseTimeField("end_at", req.EndAt); err != nil {
		Error(w, r, err)
		return
	}
	if err := s.CronScheduler.CheckCronTrigger(t); err != nil {
		Error(w, r, err)
		return
	}
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		Error(w, r, err)
		return
	}
	if wf.Archived() {
		Error(w, r, orcheo.Errorf(orcheo.ECONFLICT, "workflow %q is archived", wf.Handle))
		return
	}
	t.WorkflowID = wf.ID
	if err := s.Cron.SetCronTrigger(r.Context(), t); err != nil {
		Error(w, r, err)
		return
	}
	// The beats hear it on the change feed and set their timers now, so
	// the first slot fires on time rather than at their next reload.
	s.changed(r, wf.ID)
	encodeJSON(w, r, http.StatusOK, s.withNext(t))
}

// handleCronConfigDelete removes the trigger: 204, or 404 if there is none.
// Runs it created stay.
func (s *Server) handleCronConfigDelete(w http.ResponseWriter, r *http.Request) {
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		Error(w, r, err)
		return
	}
	if err := s.Cron.DeleteCronTrigger(r.Context(), wf.ID); err != nil {
		Error(w, r, err)
		return
	}
	s.changed(r, wf.ID) // the beats drop its timer now
	w.WriteHeader(http.StatusNoContent)
}

type cronListResponse struct {
	Triggers []*orcheo.CronTrigger `json:"triggers"`
}

// handleCronList lists the cron triggers of workflows that are not
// archived, with their next slot. The beat polls it to set its timers.
func (s *Server) handleCronList(w http.ResponseWriter, r *http.Request) {
	list, err := s.Cron.FindCronTriggers(r.Context())
	if err != nil {
		Error(w, r, err)
		return
	}
	if list == nil {
		list = []*orcheo.CronTrigger{}
	}
	for _, t := range list {
		s.withNext(t)
	}
	encodeJSON(w, r, http.StatusOK, &cronListResponse{Triggers: list})
}

type cronDispatchRequest struct {
	Now *string `json:"now"`
}

// handleCronDispatch fires every due slot (see orcheo.CronDispatcher) and
// answers 200 with the runs it created. An empty body means now.
func (s *Server) handleCronDispatch(w http.ResponseWriter, r *http.Request) {
	var req cronDispatchRequest
	if err := decodeJSON(r, &req, true); err != nil {
		Error(w, r, err)
		return
	}
	now, err := parseTimeField("now", req.Now)
	if err != nil {
		Error(w, r, err)
		return
	}
	res, err := s.CronDispatcher.DispatchCron(r.Context(), now)
	if err != nil {
		Error(w, r, err)
		return
	}
	encodeJSON(w, r, http.StatusOK, res)
}
