package metrics

import (
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/orcheo/orcheo/internal/promtext"
)

func TestRegisterRetention(t *testing.T) {
	reg := NewRegistry()
	var deleted atomic.Int64
	RegisterRetention(reg, deleted.Load)
	scrape := func() float64 {
		t.Helper()
		rec := httptest.NewRecorder()
		Handler(reg, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		v, ok := promtext.Value(rec.Body.String(), "orcheo_retention_deleted_runs_total")
		if !ok {
			t.Fatalf("no orcheo_retention_deleted_runs_total in\n%s", rec.Body.String())
		}
		return v
	}
	if v := scrape(); v != 0 {
		t.Fatalf("before any deletion = %v", v)
	}
	deleted.Add(1234)
	if v := scrape(); v != 1234 {
		t.Fatalf("after 1234 deletions = %v", v)
	}
}
