package main

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
)

func newQuietEnv(getenv func(string) string) (*env, *strings.Builder) {
	var out strings.Builder
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &env{stdout: &out, stderr: &strings.Builder{}, getenv: getenv}, &out
}

// TestVersion: orcheo version and --version print the build's module
// version and Go version, with no configuration needed (a bad one too).
func TestVersion(t *testing.T) {
	bad := func(k string) string {
		if k == "ORCHEO_WORKER_CONCURRENCY" {
			return "not a number"
		}
		return ""
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		e, out := newQuietEnv(bad)
		if err := e.run(context.Background(), args); err != nil {
			t.Fatalf("orcheo %v: %v", args, err)
		}
		if !strings.HasPrefix(out.String(), "orcheo ") || !strings.HasSuffix(strings.TrimSpace(out.String()), runtime.Version()) {
			t.Fatalf("orcheo %v = %q", args, out.String())
		}
	}
	e, out := newQuietEnv(nil)
	if err := e.run(context.Background(), []string{"version", "--json"}); err != nil {
		t.Fatal(err)
	}
	var bi buildInfo
	if err := json.Unmarshal([]byte(out.String()), &bi); err != nil || bi.GoVersion != runtime.Version() || bi.Version == "" {
		t.Fatalf("version --json = %s (%v)", out.String(), err)
	}
}

// TestWorkerFlags_BadName: -n and --name refuse a name that would break
// the registry's keys, before anything is opened.
func TestWorkerFlags_BadName(t *testing.T) {
	for _, args := range [][]string{{"worker", "-n", "a:b"}, {"worker", "--name", "{q}"}, {"worker", "-n", "w 1"}} {
		e, _ := newQuietEnv(nil)
		err := e.run(context.Background(), args)
		if orcheo.ErrorCode(err) != orcheo.EINVALID || !strings.Contains(orcheo.ErrorMessage(err), "worker name") {
			t.Errorf("orcheo %v: err = %v, want EINVALID about the worker name", args, err)
		}
	}
	// %h expands before the check: a valid name passes it and the worker
	// goes on to want its database.
	e, _ := newQuietEnv(nil)
	err := e.run(context.Background(), []string{"worker", "-n", "w1@%h", "-c", "2", "-Q", "a,b", "--loglevel", "debug"})
	if err == nil || !strings.Contains(orcheo.ErrorMessage(err), "ORCHEO_DATABASE_URL") {
		t.Fatalf("valid flags without a database: err = %v, want the database URL missing", err)
	}
}
