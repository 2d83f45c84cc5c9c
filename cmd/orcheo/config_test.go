package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	t.Run("Defaults", func(t *testing.T) {
		got, err := ConfigFromEnv(env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, DefaultConfig()) {
			t.Fatalf("got %+v, want the defaults %+v", got, DefaultConfig())
		}
	})
	t.Run("OK", func(t *testing.T) {
		got, err := ConfigFromEnv(env(map[string]string{
			"ORCHEO_DATABASE_URL":       "postgres://x/y",
			"REDIS_URL":                 "redis://r:6380/2",
			"ORCHEO_API_TOKEN":          "secret",
			"ORCHEO_WORKER_CONCURRENCY": "3",
			"ORCHEO_QUEUES":             "a, b,,c",
			"ORCHEO_LEASE_DURATION":     "90s",
			"ORCHEO_RESULT_BACKEND":     "none",
			"ORCHEO_MAX_BODY_BYTES":     "2048",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if got.DatabaseURL != "postgres://x/y" || got.RedisURL != "redis://r:6380/2" || got.Concurrency != 3 ||
			!reflect.DeepEqual(got.Queues, []string{"a", "b", "c"}) || got.LeaseDuration != 90*time.Second ||
			got.ResultBackend != "none" || got.MaxBodyBytes != 2048 {
			t.Fatalf("got %+v", got)
		}
		if got.Token != "secret" {
			t.Fatalf("the CLI token should fall back to ORCHEO_API_TOKEN, got %q", got.Token)
		}
	})
	t.Run("TokenOverride", func(t *testing.T) {
		got, err := ConfigFromEnv(env(map[string]string{"ORCHEO_API_TOKEN": "a", "ORCHEO_TOKEN": "b"}))
		if err != nil || got.Token != "b" || got.APIToken != "a" {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	for name, kv := range map[string]map[string]string{
		"BadConcurrency":  {"ORCHEO_WORKER_CONCURRENCY": "zero"},
		"ZeroConcurrency": {"ORCHEO_WORKER_CONCURRENCY": "0"},
		"BadDuration":     {"ORCHEO_LEASE_DURATION": "forever"},
		"BadBackend":      {"ORCHEO_RESULT_BACKEND": "mongo"},
		"BadFormat":       {"ORCHEO_LOG_FORMAT": "xml"},
	} {
		kv := kv
		t.Run(name, func(t *testing.T) {
			_, err := ConfigFromEnv(env(kv))
			if err == nil {
				t.Fatalf("no error for %v", kv)
			}
			for k := range kv {
				if !strings.Contains(err.Error(), k) {
					t.Fatalf("error %q does not name %s", err, k)
				}
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	t.Parallel()
	e := &env{stdout: &strings.Builder{}, stderr: &strings.Builder{}}
	fs := e.newFlagSet("x")
	asJSON := fs.Bool("json", false, "")
	limit := fs.Int("limit", 0, "")
	pos, err := parseArgs(fs, []string{"a", "--json", "b", "--limit", "5"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pos, []string{"a", "b"}) || !*asJSON || *limit != 5 {
		t.Fatalf("pos=%v json=%v limit=%d", pos, *asJSON, *limit)
	}
	if _, err := parseArgs(fs, []string{"--nope"}); err == nil {
		t.Fatal("an unknown flag parsed")
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true,
		"0.0.0.0:8080": false, ":8080": false, "10.0.0.1:80": false, "nonsense": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
