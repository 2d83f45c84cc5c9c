package server

import (
	"context"
	"net/http"
	"sync"

	"github.com/gorilla/mux"
	"github.com/orcheo/orcheo"
)

func (s *Server) registerHealthRoutes(r *mux.Router) {
	r.HandleFunc("/healthz", s.handleHealthz).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.handleReadyz).Methods(http.MethodGet)
}

type healthResponse struct {
	Status string `json:"status"`
}

// handleHealthz answers 200 while the process serves HTTP; it checks no
// dependency, so a database outage does not get the API restarted.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	encodeJSON(w, r, http.StatusOK, &healthResponse{Status: "ok"})
}

type readyResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// handleReadyz pings every ReadyChecks entry concurrently, each within
// readyCheckTimeout, and answers 200 "ok" if all answer, else 503
// "unavailable" with "error: …" for each failing check.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyCheckTimeout)
	defer cancel()

	resp := &readyResponse{Status: "ok", Checks: make(map[string]string, len(s.ReadyChecks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, p := range s.ReadyChecks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			result := "ok"
			if err := p.Ping(ctx); err != nil {
				// /readyz takes no token: it shows an application error's
				// message, never a driver's text, which names hosts and users.
				result = "error: unavailable (details in the API log)"
				if orcheo.ErrorCode(err) != orcheo.EINTERNAL {
					result = "error: " + orcheo.ErrorMessage(err)
				}
				loggerFrom(r).WithError(err).WithField("check", name).Warn("readiness check failed")
			}
			mu.Lock()
			resp.Checks[name] = result
			mu.Unlock()
		}()
	}
	wg.Wait()

	status := http.StatusOK
	for _, result := range resp.Checks {
		if result != "ok" {
			resp.Status, status = "unavailable", http.StatusServiceUnavailable
		}
	}
	encodeJSON(w, r, status, resp)
}
