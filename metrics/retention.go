package metrics

import "github.com/prometheus/client_golang/prometheus"

// RegisterRetention exports orcheo_retention_deleted_runs_total, the runs
// (with their steps and events) the retention of finished runs deleted in
// this process; deleted is read at each scrape. It grows only on the worker
// that leads the rescuer's leadership, so sum it over workers. Runs deleted
// by hand (orcheo runs purge) are not counted here.
func RegisterRetention(reg prometheus.Registerer, deleted func() int64) {
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "retention_deleted_runs_total",
		Help: "Finished runs deleted by the retention of finished runs (ORCHEO_RUN_RETENTION), with their steps and events."},
		func() float64 { return float64(deleted()) }))
}
