// Package promtext reads single values out of a Prometheus text exposition,
// for tests that scrape a real /metrics endpoint.
package promtext

import (
	"fmt"
	"io"
	"net/http"
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

// Get GETs a metrics endpoint, with "Authorization: Bearer token" unless
// token is "", and returns the status and body.
func Get(url, token string) (status int, body string, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", url, err)
	}
	return resp.StatusCode, string(b), nil
}
