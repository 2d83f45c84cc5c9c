package metrics_test

import (
	"testing"

	"github.com/orcheo/orcheo/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

func TestWebhooks(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.NewWebhooks(reg)
	m.Refused("replay")
	m.Refused("replay")
	m.Refused("something else")
	m.Refused("not_found")
	want := map[string]float64{"not_found": 1, "disabled": 0, "archived": 0, "method": 0, "too_large": 0, "bad_request": 0,
		"required": 0, "verify": 1, "replay": 2, "rate_limit": 0, "rate_limit_ip": 0, "unavailable": 0}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			got[metric.GetLabel()[0].GetValue()] = metric.GetCounter().GetValue()
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
