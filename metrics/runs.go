package metrics

import (
	"context"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/prometheus/client_golang/prometheus"
)

// attemptBuckets span a quick set node (milliseconds) to a long HTTP
// workflow (an hour); longer attempts land in +Inf.
var attemptBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// pickupBuckets span a worker that picks a run up in a millisecond to a
// backlog of minutes; runDurationBuckets are attemptBuckets stretched to a
// day, since a run spans its retries and its suspensions.
var (
	pickupBuckets      = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900}
	runDurationBuckets = append(append([]float64(nil), attemptBuckets...), 7200, 21600, 86400)
)

// Runs counts runs created and attempts finished. Safe for concurrent use.
type Runs struct {
	created  *prometheus.CounterVec
	finished *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// pickup is the wait from a run's publish (or its due time) to its
	// claim; runDuration a finished run's first claim to its end.
	pickup      prometheus.Histogram
	runDuration *prometheus.HistogramVec
}

// NewRuns registers the run counters on reg. Every trigger and status is
// set to zero up front, so rate() and absent() work before the first run.
func NewRuns(reg prometheus.Registerer) *Runs {
	m := &Runs{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "runs_created_total",
			Help: "Runs stored by this process, by what triggered them (duplicates and skipped cron slots are not counted).",
		}, []string{"trigger"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "runs_finished_total",
			Help: "Runs this process ended: by a worker (succeeded, failed or cancelled) or by a cancel while pending (API), by status and trigger.",
		}, []string{"status", "trigger"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "run_attempt_duration_seconds",
			Help:    "Time from claim to stored result of each attempt, by the attempt's outcome.",
			Buckets: attemptBuckets,
		}, []string{"outcome"}),
	}
	m.pickup = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "run_pickup_latency_seconds",
		Help:    "Time from a run's publish (or, for a delayed retry or a suspended run, its due time) to its claim by a worker.",
		Buckets: pickupBuckets,
	})
	m.runDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "run_duration_seconds",
		Help:    "Time from a run's first claim to its end, retries and suspensions included, of the runs a worker ended, by trigger and status.",
		Buckets: runDurationBuckets,
	}, []string{"trigger", "status"})
	reg.MustRegister(m.created, m.finished, m.duration, m.pickup, m.runDuration)
	for _, trigger := range []string{orcheo.TriggerManual, orcheo.TriggerWebhook, orcheo.TriggerCron, orcheo.TriggerWorkflow} {
		m.created.WithLabelValues(trigger)
		for _, status := range []orcheo.RunStatus{orcheo.RunSucceeded, orcheo.RunFailed, orcheo.RunCancelled} {
			m.finished.WithLabelValues(string(status), trigger)
			m.runDuration.WithLabelValues(trigger, string(status))
		}
	}
	return m
}

// Wrap returns runs whose CreateRun and CreateRuns count each run they store and whose
// CancelRun counts the pending runs it ends. Everything else passes through, so the server and the cron dispatcher count runs
// without knowing about metrics.
func (m *Runs) Wrap(runs orcheo.RunService) orcheo.RunService {
	return countingRuns{RunService: runs, m: m}
}

type countingRuns struct {
	orcheo.RunService
	m *Runs
}

func (c countingRuns) CreateRun(ctx context.Context, run *orcheo.Run) (*orcheo.Run, bool, error) {
	got, created, err := c.RunService.CreateRun(ctx, run)
	if err == nil && created {
		c.m.created.WithLabelValues(got.TriggeredBy).Inc()
	}
	return got, created, err
}

// CreateRuns counts each run it stores, as CreateRun does.
func (c countingRuns) CreateRuns(ctx context.Context, runs []*orcheo.Run) []orcheo.RunCreated {
	results := c.RunService.CreateRuns(ctx, runs)
	for _, res := range results {
		if res.Err == nil && res.Created {
			c.m.created.WithLabelValues(res.Run.TriggeredBy).Inc()
		}
	}
	return results
}

// CancelRun counts a pending run the cancel ended at once; a running one
// ends later on its worker, which counts it.
func (c countingRuns) CancelRun(ctx context.Context, id string) (*orcheo.Run, error) {
	run, err := c.RunService.CancelRun(ctx, id)
	if err == nil && run.Status == orcheo.RunCancelled {
		c.m.finished.WithLabelValues(string(run.Status), run.TriggeredBy).Inc()
	}
	return run, err
}

// AttemptFinished implements tasks.AttemptObserver: every attempt goes
// into the histogram, and a run that ended (not one going back to pending
// for a retry) into runs_finished_total.
func (m *Runs) AttemptFinished(run *orcheo.Run, outcome orcheo.RunStatus, took time.Duration) {
	m.duration.WithLabelValues(string(outcome)).Observe(took.Seconds())
	if !run.Status.Terminal() {
		return
	}
	m.finished.WithLabelValues(string(run.Status), run.TriggeredBy).Inc()
	if run.StartedAt != nil && run.CompletedAt != nil && knownTrigger(run.TriggeredBy) {
		m.runDuration.WithLabelValues(run.TriggeredBy, string(run.Status)).Observe(max(run.CompletedAt.Sub(*run.StartedAt).Seconds(), 0))
	}
}

// RunClaimed implements tasks.ClaimObserver: the pickup latency of a run
// claimed at at, measured from when it was last published (enqueued_at,
// else its creation) or, if later, when it became due (not_before: a
// retry's delay or a suspension is not a wait for a worker).
func (m *Runs) RunClaimed(run *orcheo.Run, at time.Time) {
	m.pickup.Observe(PickupLatency(run, at).Seconds())
}

// PickupLatency is how long run waited for the claim at at (see
// RunClaimed); never negative, as clocks of API and worker may differ.
func PickupLatency(run *orcheo.Run, at time.Time) time.Duration {
	from := run.CreatedAt
	if run.EnqueuedAt != nil {
		from = *run.EnqueuedAt
	}
	if run.NotBefore != nil && run.NotBefore.After(from) {
		from = *run.NotBefore
	}
	return max(at.Sub(from), 0)
}

// knownTrigger keeps run_duration_seconds' labels bounded.
func knownTrigger(t string) bool {
	switch t {
	case orcheo.TriggerManual, orcheo.TriggerWebhook, orcheo.TriggerCron, orcheo.TriggerWorkflow:
		return true
	}
	return false
}
