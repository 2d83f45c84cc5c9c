package engine

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// TestHTTPNode_ResponseDecodeBounded: a JSON response under the size limit
// whose decoded values would take a hundred times its size (a megabyte of
// empty objects) fails the node instead of costing the worker that much
// memory; an ordinary JSON response still decodes.
func TestHTTPNode_ResponseDecodeBounded(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/bomb" {
			_, _ = io.WriteString(w, "["+strings.Repeat("{},", 300_000)+"{}]")
			return
		}
		_, _ = io.WriteString(w, `{"items":[{"id":1},{"id":2}]}`)
	}))
	t.Cleanup(srv.Close)
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	e := New(Options{Logger: logger, HTTP: HTTPOptions{AllowPrivate: true}})
	exec := func(path string) *orcheo.Execution {
		def := `{"nodes":[{"id":"call","type":"http","url":"` + srv.URL + path + `"},{"id":"n","type":"set","values":{"n":"len(steps.call.output.body.items ?? [])"}}]}`
		if _, err := e.Compile([]byte(def)); err != nil {
			t.Fatal(err)
		}
		return e.Execute(context.Background(), []byte(def), &orcheo.Run{ID: orcheo.NewID(), Attempt: 1}, orcheo.ExecuteOptions{})
	}
	if x := exec("/bomb"); x.Err == nil || !strings.Contains(x.Err.Error(), "bytes decoded, more than the limit") || !orcheo.IsPermanent(x.Err) {
		t.Fatalf("1 MiB of empty objects: err = %v, want a permanent refusal", x.Err)
	}
	if x := exec("/ok"); x.Err != nil || !strings.Contains(string(x.Output), `"n":2`) {
		t.Fatalf("ordinary response: err %v, output %s", x.Err, x.Output)
	}
}
