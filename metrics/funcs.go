package metrics

import "github.com/prometheus/client_golang/prometheus"

// RescuerCounts mirrors tasks.RescuerStats, which this leaf package does
// not import.
type RescuerCounts struct {
	Passes, Rescued, Failed, Reenqueued, EnqueueFailed int64
}

// RegisterRescuer exports a worker's rescuer counters; stats is read at
// each scrape. The counters grow only while the worker leads the rescue,
// so sum them over workers.
func RegisterRescuer(reg prometheus.Registerer, stats func() RescuerCounts) {
	counter := func(name, help string, field func(RescuerCounts) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help},
			func() float64 { return float64(field(stats())) })
	}
	reg.MustRegister(
		counter("rescuer_passes_total", "Rescue passes made by this worker while it led.",
			func(s RescuerCounts) int64 { return s.Passes }),
		counter("rescuer_rescued_total", "Runs with an expired lease put back to pending.",
			func(s RescuerCounts) int64 { return s.Rescued }),
		counter("rescuer_failed_total", "Runs with an expired lease and no attempt left, failed as \"worker lost\".",
			func(s RescuerCounts) int64 { return s.Failed }),
		counter("rescuer_reenqueued_total", "Pending runs whose message was lost, published again.",
			func(s RescuerCounts) int64 { return s.Reenqueued }),
		counter("rescuer_enqueue_failed_total", "Rescued runs whose publish failed (left for the next pass).",
			func(s RescuerCounts) int64 { return s.EnqueueFailed }),
	)
}

// BeatStatus is what the beat exports (from beat.Status).
type BeatStatus struct {
	Active     bool
	Triggers   int
	Dispatches int64
}

// RegisterBeat exports the beat's state; status is read at each scrape.
func RegisterBeat(reg prometheus.Registerer, status func() BeatStatus) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "beat_active",
			Help: "1 while this beat holds the lease and dispatches, 0 on standby."},
			func() float64 {
				if status().Active {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "beat_triggers",
			Help: "Cron triggers the beat has loaded."},
			func() float64 { return float64(status().Triggers) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "beat_dispatches_total",
			Help: "Dispatch calls this beat made to the API."},
			func() float64 { return float64(status().Dispatches) }),
	)
}
