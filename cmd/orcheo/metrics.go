package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo/beat"
	"github.com/orcheo/orcheo/metrics"
	"github.com/orcheo/orcheo/tasks"
)

// processMetrics is one process's registry and run counters. orcheo dev
// shares one between its API, worker and beat, so each metric is
// registered once.
type processMetrics struct {
	reg  *prometheus.Registry
	runs *metrics.Runs
}

func newProcessMetrics() processMetrics {
	reg := metrics.NewRegistry()
	return processMetrics{reg: reg, runs: metrics.NewRuns(reg)}
}

// observeWorker makes w count its attempts and pickups and exports its
// rescuer's counters and its health checks.
func (m processMetrics) observeWorker(w *tasks.Worker) {
	w.Observer = m.runs
	metrics.RegisterRescuer(m.reg, func() metrics.RescuerCounts {
		s := w.RescuerStats()
		return metrics.RescuerCounts{Passes: s.Passes, Rescued: s.Rescued, Failed: s.Failed,
			Reenqueued: s.Reenqueued, EnqueueFailed: s.EnqueueFailed}
	})
	metrics.RegisterWorkerHealth(m.reg, func() []string { return w.Health().Failed })
}

// observeBeat exports b's state.
func (m processMetrics) observeBeat(b *beat.Scheduler) {
	metrics.RegisterBeat(m.reg, func() metrics.BeatStatus {
		s := b.Status()
		return metrics.BeatStatus{Active: s.Active, Triggers: s.Triggers, Dispatches: s.Dispatches}
	})
}

// serveStatus serves GET /healthz, GET /readyz (checks, health.go) and
// GET /metrics on addr, for the processes without an API of their own:
// the worker and the beat. It listens before returning, so a busy port
// fails the start.
func serveStatus(addr string, m processMetrics, checks statusChecks, log logrus.FieldLogger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", checks.serve(checks.healthz))
	mux.HandleFunc("GET /readyz", checks.serve(checks.readyz))
	mux.Handle("GET /metrics", metrics.Handler(m.reg, log))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("health and metrics server")
		}
	}()
	log.WithField("addr", ln.Addr().String()).Info("health and metrics listening")
	return srv, nil
}
