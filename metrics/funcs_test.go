package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/orcheo/orcheo/internal/promtext"
	"github.com/orcheo/orcheo/metrics"
	"github.com/sirupsen/logrus"
)

// TestRegisterFuncs checks that the rescuer's and the beat's values are
// read at scrape time under their documented names.
func TestRegisterFuncs(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	rescuer := metrics.RescuerCounts{Passes: 7, Rescued: 3, Failed: 1, Reenqueued: 2, EnqueueFailed: 4}
	beat := metrics.BeatStatus{Active: true, Triggers: 5, Dispatches: 9}
	metrics.RegisterRescuer(reg, func() metrics.RescuerCounts { return rescuer })
	metrics.RegisterBeat(reg, func() metrics.BeatStatus { return beat })
	scrape := func() string {
		rec := httptest.NewRecorder()
		metrics.Handler(reg, logrus.New()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return rec.Body.String()
	}
	want := func(text string, values map[string]float64) {
		t.Helper()
		for series, v := range values {
			if got, ok := promtext.Value(text, series); !ok || got != v {
				t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
			}
		}
	}
	want(scrape(), map[string]float64{
		"orcheo_rescuer_passes_total": 7, "orcheo_rescuer_rescued_total": 3, "orcheo_rescuer_failed_total": 1,
		"orcheo_rescuer_reenqueued_total": 2, "orcheo_rescuer_enqueue_failed_total": 4,
		"orcheo_beat_active": 1, "orcheo_beat_triggers": 5, "orcheo_beat_dispatches_total": 9,
	})
	rescuer.Rescued, beat.Active = 4, false
	want(scrape(), map[string]float64{"orcheo_rescuer_rescued_total": 4, "orcheo_beat_active": 0})
}
