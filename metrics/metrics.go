// Package metrics exports orcheo's Prometheus metrics (docs/metrics.md).
// It is a leaf: it wraps client_golang behind root interfaces and small
// hooks (a RunService decorator, tasks' AttemptObserver, functions that
// read counters), so server/, tasks/ and beat/ never import Prometheus;
// cmd/orcheo wires it.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
)

const namespace = "orcheo"

// NewRegistry returns a registry holding the Go runtime and process
// collectors; each process adds its own orcheo_ metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus text format. A collector that fails
// is logged and left out rather than failing the whole scrape: the
// orcheo_scrape_source_up gauge says which source was missing.
func Handler(reg *prometheus.Registry, log logrus.FieldLogger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      log,
		ErrorHandling: promhttp.ContinueOnError,
	})
}
