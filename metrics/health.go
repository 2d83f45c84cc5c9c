package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// WorkerHealthChecks are the checks of a worker's /healthz
// (tasks.Worker.Health), as labels of orcheo_worker_health_check_failing.
var WorkerHealthChecks = []string{"fetch", "redis", "database", "draining"}

// RegisterWorkerHealth exports a worker's health checks, one gauge per
// check of WorkerHealthChecks: 1 while it fails, 0 while it passes.
// failing is read at each scrape and returns the failing checks' names, so
// Prometheus can alert on a worker its supervisor keeps alive but that
// does no work (deploy/prometheus/alerts.yml).
func RegisterWorkerHealth(reg prometheus.Registerer, failing func() []string) {
	for _, check := range WorkerHealthChecks {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "worker_health_check_failing",
			Help:        "1 while this worker's health check fails (its /healthz answers 503 naming it), else 0.",
			ConstLabels: prometheus.Labels{"check": check},
		}, func() float64 {
			if slices.Contains(failing(), check) {
				return 1
			}
			return 0
		}))
	}
}
