package promtext

import "testing"

func TestValue(t *testing.T) {
	text := `# HELP orcheo_runs_created_total Runs.
# TYPE orcheo_runs_created_total counter
orcheo_runs_created_total{trigger="cron"} 0
orcheo_runs_created_total{trigger="webhook"} 3
orcheo_runs_pending 2 1700000000000
orcheo_bad NaNx
`
	for _, tc := range []struct {
		series string
		want   float64
		ok     bool
	}{
		{`orcheo_runs_created_total{trigger="webhook"}`, 3, true},
		{`orcheo_runs_created_total{trigger="cron"}`, 0, true},
		{`orcheo_runs_pending`, 2, true},
		{`orcheo_runs_created_total{trigger="manual"}`, 0, false},
		{`orcheo_runs`, 0, false},
		{`orcheo_bad`, 0, false},
	} {
		if got, ok := Value(text, tc.series); got != tc.want || ok != tc.ok {
			t.Errorf("Value(%s) = %v, %v; want %v, %v", tc.series, got, ok, tc.want, tc.ok)
		}
	}
}
