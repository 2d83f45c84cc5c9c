package main

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
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
	t.Run("DeliveryAndEngine", func(t *testing.T) {
		got, err := ConfigFromEnv(env(map[string]string{
			"ORCHEO_HEARTBEAT_INTERVAL":   "2s",
			"ORCHEO_CONSUMER_TTL":         "7s",
			"ORCHEO_RESCUE_INTERVAL":      "3s",
			"ORCHEO_REENQUEUE_AFTER":      "1m",
			"ORCHEO_WORKER_DRAIN_TIMEOUT": "45s",
			"ORCHEO_REQUEUE_INTERVAL":     "250ms",
			"ORCHEO_HTTP_ALLOW_PRIVATE":   "true",
			"ORCHEO_HTTP_ALLOW_CIDRS":     " 10.20.1.2/16 , 127.0.0.1/32",
			"ORCHEO_WORKFLOW_ENV":         "PARTNER_URL, UNSET",
			"PARTNER_URL":                 "https://partner.example",
			"ORCHEO_DATABASE_URL":         "never read by a workflow",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if got.HeartbeatInterval != 2*time.Second || got.ConsumerTTL != 7*time.Second ||
			got.RescueInterval != 3*time.Second || got.ReenqueueAfter != time.Minute ||
			got.DrainTimeout != 45*time.Second || got.RequeueEvery != 250*time.Millisecond {
			t.Fatalf("durations: got %+v", got)
		}
		wantCIDRs := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("127.0.0.1/32")}
		if !got.HTTPAllowPrivate || !reflect.DeepEqual(got.HTTPAllowCIDRs, wantCIDRs) {
			t.Fatalf("http: allow private %v, CIDRs %v; want true, %v", got.HTTPAllowPrivate, got.HTTPAllowCIDRs, wantCIDRs)
		}
		wantEnv := map[string]string{"PARTNER_URL": "https://partner.example", "UNSET": ""}
		if !reflect.DeepEqual(got.WorkflowEnv, wantEnv) {
			t.Fatalf("workflow env = %v, want only the listed names %v", got.WorkflowEnv, wantEnv)
		}
	})
	t.Run("Hardening", func(t *testing.T) {
		got, err := ConfigFromEnv(env(map[string]string{
			"ORCHEO_HTTP_READ_HEADER_TIMEOUT":        "2s",
			"ORCHEO_HTTP_READ_TIMEOUT":               "5s",
			"ORCHEO_HTTP_WRITE_TIMEOUT":              "20s",
			"ORCHEO_HTTP_IDLE_TIMEOUT":               "30s",
			"ORCHEO_HTTP_MAX_UNAUTHENTICATED":        "0",
			"ORCHEO_HTTP_MAX_UNAUTHENTICATED_PER_IP": "7",
			"ORCHEO_HTTP_TRUSTED_PROXIES":            "10.0.0.0/8, 127.0.0.1,::1",
			"ORCHEO_MAX_CHILD_DEPTH":                 "3",
			"ORCHEO_MAX_CHILD_RUNS":                  "4",
			"ORCHEO_MAX_RUN_TREE":                    "50",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if got.HTTPReadHeaderTimeout != 2*time.Second || got.HTTPReadTimeout != 5*time.Second ||
			got.HTTPWriteTimeout != 20*time.Second || got.HTTPIdleTimeout != 30*time.Second ||
			got.HTTPMaxUnauthenticated != 0 || got.HTTPMaxUnauthenticatedPerIP != 7 ||
			got.MaxChildDepth != 3 || got.MaxChildRuns != 4 || got.MaxRunTree != 50 {
			t.Fatalf("got %+v", got)
		}
		if got := prefixList(got.HTTPTrustedProxies); got != "10.0.0.0/8,127.0.0.1/32,::1/128" {
			t.Fatalf("trusted proxies %s", got)
		}
		for _, bad := range []map[string]string{
			{"ORCHEO_HTTP_MAX_UNAUTHENTICATED": "-1"},
			{"ORCHEO_HTTP_READ_TIMEOUT": "30s", "ORCHEO_HTTP_WRITE_TIMEOUT": "30s"},
			{"ORCHEO_MAX_CHILD_DEPTH": "0"},
			{"ORCHEO_MAX_RUN_TREE": "many"},
			{"ORCHEO_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"},
		} {
			if _, err := ConfigFromEnv(env(bad)); err == nil {
				t.Errorf("%v: accepted", bad)
			}
		}
		// The daemon refuses to start naming the entry it cannot read.
		if _, err := ConfigFromEnv(env(map[string]string{"ORCHEO_HTTP_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.0/33"})); err == nil ||
			!strings.Contains(err.Error(), `ORCHEO_HTTP_TRUSTED_PROXIES: "10.0.0.0/33" is not an IP address or a CIDR`) {
			t.Errorf("invalid trusted proxy: %v", err)
		}
		if got := DefaultConfig(); got.HTTPTrustedProxies != nil {
			t.Errorf("trusted proxies by default: %v", got.HTTPTrustedProxies)
		}
	})
	t.Run("DeliveryDefaultsLeftToTasks", func(t *testing.T) {
		// Zero means "the tasks package's default", which depends on the
		// lease (see docs/configuration.md).
		got := DefaultConfig()
		if got.HeartbeatInterval != 0 || got.ConsumerTTL != 0 || got.RescueInterval != 0 ||
			got.ReenqueueAfter != 0 || got.DrainTimeout != 0 || got.HTTPAllowPrivate ||
			got.HTTPAllowCIDRs != nil || got.WorkflowEnv != nil {
			t.Fatalf("defaults: %+v", got)
		}
		if got.RequeueEvery != 5*time.Second {
			t.Fatalf("requeue interval default = %v, want 5s", got.RequeueEvery)
		}
	})
	t.Run("Cron", func(t *testing.T) {
		got, err := ConfigFromEnv(env(map[string]string{
			"CRON_DISPATCH_INTERVAL":      "30s",
			"ORCHEO_CRON_RELOAD_INTERVAL": "4s",
			"ORCHEO_CRON_GRACE":           "5m",
			"ORCHEO_CRON_SECONDS":         "true",
			"ORCHEO_BEAT_HEALTH_ADDR":     "127.0.0.1:9090",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if got.Cron.Interval != 30*time.Second || got.Cron.ReloadInterval != 4*time.Second ||
			got.Cron.Grace != 5*time.Minute || !got.Cron.Seconds || got.Cron.HealthAddr != "127.0.0.1:9090" {
			t.Fatalf("cron: got %+v", got.Cron)
		}
		if def := DefaultConfig().Cron; def.Interval != time.Minute || def.ReloadInterval != 10*time.Second ||
			def.Grace != 2*time.Minute || def.Seconds || def.HealthAddr != "" {
			t.Fatalf("cron defaults = %+v, want 60s, 10s, 2m, false, none as documented", def)
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
		"BadHeartbeat":    {"ORCHEO_HEARTBEAT_INTERVAL": "10"},
		"ZeroConsumerTTL": {"ORCHEO_CONSUMER_TTL": "0s"},
		"BadRescue":       {"ORCHEO_RESCUE_INTERVAL": "soon"},
		"NegativeReenq":   {"ORCHEO_REENQUEUE_AFTER": "-1m"},
		"BadDrain":        {"ORCHEO_WORKER_DRAIN_TIMEOUT": "x"},
		"BadRequeue":      {"ORCHEO_REQUEUE_INTERVAL": "1y"},
		"BadPrivate":      {"ORCHEO_HTTP_ALLOW_PRIVATE": "maybe"},
		"BadCIDR":         {"ORCHEO_HTTP_ALLOW_CIDRS": "10.0.0.0/8,not-a-cidr"},
		"BadCronInterval": {"CRON_DISPATCH_INTERVAL": "often"},
		"BadCronReload":   {"ORCHEO_CRON_RELOAD_INTERVAL": "0"},
		"BadCronGrace":    {"ORCHEO_CRON_GRACE": "2"},
		"BadCronSeconds":  {"ORCHEO_CRON_SECONDS": "yes please"},
		"TwoBad":          {"ORCHEO_CONSUMER_TTL": "x", "ORCHEO_MAX_BODY_BYTES": "-1"},
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
	if _, err := parseArgs(fs, []string{"--nope"}); orcheo.ErrorCode(err) != orcheo.EINVALID {
		t.Fatalf("an unknown flag: %v, want EINVALID", err)
	}
	// -h is not an error of the user's: main exits 2 after the usage.
	if _, err := parseArgs(fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
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

// TestConfig_MatchesDocs keeps docs/configuration.md and ConfigFromEnv in
// step: every variable a table documents is read, and every variable read
// is documented. Two tables are not orcheo's: Tests (for the test suite)
// and the PG* variables pgx reads (checked here to be only PG* names that
// orcheo itself never reads).
func TestConfig_MatchesDocs(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	const (
		testsSection = "## Tests"
		pgxSection   = "### PostgreSQL settings outside the URL"
	)
	documented, byPgx := map[string]bool{}, map[string]bool{}
	row := regexp.MustCompile("^\\| `([A-Z][A-Z0-9_]*)` \\|")
	name := regexp.MustCompile("`([A-Z][A-Z0-9_]*)`")
	section := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "### ") {
			section = line
		}
		switch {
		case section == pgxSection && strings.HasPrefix(line, "| `"):
			cell, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
			for _, m := range name.FindAllStringSubmatch(cell, -1) {
				byPgx[m[1]] = true
			}
		case section == testsSection || section == pgxSection:
		default:
			if m := row.FindStringSubmatch(line); m != nil {
				documented[m[1]] = true
			}
		}
	}
	if len(byPgx) < 10 {
		t.Fatalf("found only %d PG* variables under %q; did the section change?", len(byPgx), pgxSection)
	}
	if len(documented) < 20 {
		t.Fatalf("found only %d documented variables; did the table format change?", len(documented))
	}

	read := map[string]bool{}
	if _, err := ConfigFromEnv(func(name string) string { read[name] = true; return "" }); err != nil {
		t.Fatal(err)
	}
	var undocumented, unread []string
	for name := range read {
		if !documented[name] {
			undocumented = append(undocumented, name)
		}
	}
	for name := range documented {
		if !read[name] {
			unread = append(unread, name)
		}
	}
	for name := range byPgx {
		if !strings.HasPrefix(name, "PG") || read[name] || documented[name] {
			t.Errorf("%s is in the table of what pgx reads: want only PG* variables orcheo itself does not read", name)
		}
	}
	slices.Sort(undocumented)
	slices.Sort(unread)
	if len(undocumented) > 0 || len(unread) > 0 {
		t.Fatalf("read but not in docs/configuration.md: %v; documented but never read: %v", undocumented, unread)
	}
}
