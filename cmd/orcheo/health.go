package main

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/tasks"
)

// statusCheckTimeout bounds the pings of one /readyz of the beat.
const statusCheckTimeout = 2 * time.Second

// statusCheck answers one of a status port's checks: whether it passes
// and the JSON body saying why.
type statusCheck func(ctx context.Context) (ok bool, body any)

// statusChecks are what a worker's or a beat's status port answers on
// /healthz (is the process working; a supervisor restarts it when not) and
// /readyz (can it take work now).
type statusChecks struct {
	healthz, readyz statusCheck
}

// serve answers 200 with check's body when it passes, else 503.
func (statusChecks) serve(check statusCheck) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, body := check(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(body)
	}
}

// workerChecks reports w's tasks.Worker.Health and Readiness: 503 while a
// fetch loop is stalled, Redis or the database is unreachable beyond the
// grace (healthz) or at all (readyz), or the worker drains.
func workerChecks(w *tasks.Worker) statusChecks {
	return statusChecks{
		healthz: func(context.Context) (bool, any) { r := w.Health(); return r.OK(), r },
		readyz:  func(context.Context) (bool, any) { r := w.Readiness(); return r.OK(), r },
	}
}

// beatReady is the body of a beat's /readyz.
type beatReady struct {
	Status string            `json:"status"` // "ok" or "unavailable"
	Checks map[string]string `json:"checks"` // "api", "redis": "ok" or "error: …"
	// Leader says whether this beat holds the beat leadership and
	// dispatches; a standby is ready too (it takes over on a failover).
	Leader bool   `json:"leader"`
	Holder string `json:"holder"`
}

// beatChecks keeps the beat's /healthz as it was (200 with its status,
// the state it dispatches from) and adds /readyz: the API it dispatches to
// answers, and so does the Redis its leadership lives on.
func (m *beatMain) beatChecks(holder string) statusChecks {
	b, api := m.beat, client.New(m.cfg.URL, m.cfg.Token)
	return statusChecks{
		healthz: func(context.Context) (bool, any) { return true, b.Status() },
		readyz: func(ctx context.Context) (bool, any) {
			ctx, cancel := context.WithTimeout(ctx, statusCheckTimeout)
			defer cancel()
			r := beatReady{Status: "ok", Checks: map[string]string{}, Holder: holder}
			if m.elector != nil {
				r.Leader = m.elector.IsLeader()
			}
			check := func(name string, err error) {
				r.Checks[name] = "ok"
				if err != nil {
					// No token on this port: the log has the details.
					m.log.WithError(err).WithField("check", name).Warn("beat readiness check failed")
					r.Checks[name], r.Status = "error: unreachable", "unavailable"
				}
			}
			check("api", api.Health(ctx))
			check("redis", m.redis.Ping(ctx).Err())
			return r.Status == "ok", r
		},
	}
}
