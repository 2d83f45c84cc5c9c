// Package promtext reads single values out of a Prometheus text exposition,
// for tests that scrape a real /metrics endpoint.
package promtext

import (
	"strconv"
	"strings"
)

// Value returns the value of series, written exactly as exposed: the name
// and, if any, its labels in order (`orcheo_runs_created_total{trigger="webhook"}`).
// ok is false when the series is absent.
func Value(text, series string) (v float64, ok bool) {
	for _, line := range strings.Split(text, "\n") {
		rest, found := strings.CutPrefix(line, series+" ")
		if !found {
			continue
		}
		f, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			return 0, false
		}
		return f, true
	}
	return 0, false
}
