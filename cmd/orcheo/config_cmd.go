package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/orcheo/orcheo/tasks"
)

// configCommand prints the configuration the daemons would run with in
// this environment: every variable of docs/configuration.md that
// ConfigFromEnv reads, its effective value (defaults the tasks package
// fills in included) and whether it came from the environment or the
// default. Secrets never appear: tokens, the secrets key and passwords
// inside URLs are printed as ****, and the token and key files are named,
// never read.
type configCommand struct {
	*env
	cfg Config
}

// masked stands for a secret that is set.
const masked = "****"

// configSetting is one line of orcheo config.
type configSetting struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"` // "env" or "default"
}

func (c *configCommand) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("config")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("config [--json]", pos); err != nil {
		return err
	}
	settings := configSettings(c.cfg, c.getenv)
	if *asJSON {
		return writeJSON(c.stdout, map[string]any{"settings": settings})
	}
	t := newTable(c.stdout, "VARIABLE", "VALUE", "SOURCE")
	for _, s := range settings {
		v := s.Value
		if v == "" {
			v = "-"
		}
		t.row(s.Name, v, s.Source)
	}
	return t.flush()
}

// configSettings lists cfg, read from getenv, as orcheo config prints it.
// TestConfigCommand_EveryVariable checks that every variable ConfigFromEnv
// reads is here.
func configSettings(cfg Config, getenv func(string) string) []configSetting {
	// What the tasks package fills in for zero durations, as the worker
	// and the API see it; a configuration it refuses keeps the zeros.
	tc := cfg.tasksConfig()
	if tc.Validate() != nil {
		tc = cfg.tasksConfig()
	}
	var out []configSetting
	// add records name's value; its source is the environment when any of
	// from (name itself when empty) is set there.
	add := func(name, value string, from ...string) {
		if len(from) == 0 {
			from = []string{name}
		}
		source := "default"
		for _, f := range from {
			if strings.TrimSpace(getenv(f)) != "" {
				source = "env"
			}
		}
		out = append(out, configSetting{Name: name, Value: value, Source: source})
	}
	secret := func(v string) string {
		if v == "" {
			return ""
		}
		return masked
	}
	orDefault := func(d, def time.Duration) string {
		if d == 0 {
			d = def
		}
		return d.String()
	}
	itoa := strconv.Itoa
	btoa := strconv.FormatBool

	add("ORCHEO_DATABASE_URL", maskURL(cfg.DatabaseURL))
	add("REDIS_URL", maskURL(cfg.RedisURL), "REDIS_URL", "ORCHEO_REDIS_SENTINELS", "ORCHEO_REDIS_SENTINEL_MASTER")
	add("ORCHEO_REDIS_SENTINELS", strings.Join(splitList(getenv("ORCHEO_REDIS_SENTINELS")), ","))
	add("ORCHEO_REDIS_SENTINEL_MASTER", strings.TrimSpace(getenv("ORCHEO_REDIS_SENTINEL_MASTER")))
	add("ORCHEO_REDIS_PREFIX", cfg.RedisPrefix)
	add("ORCHEO_HTTP_ADDR", cfg.HTTPAddr)
	add("ORCHEO_API_TOKEN", secret(cfg.APIToken))
	tokens := make([]string, 0, len(cfg.APITokens))
	for _, tok := range cfg.APITokens {
		tokens = append(tokens, fmt.Sprintf("%s:%s:%s", tok.Name, tok.Scope, masked))
	}
	add("ORCHEO_API_TOKENS", strings.Join(tokens, ","))
	add("ORCHEO_API_TOKENS_FILE", cfg.APITokensFile) // a path; its tokens are not read here
	add("ORCHEO_SECRETS_KEY", secret(cfg.SecretsKey))
	add("ORCHEO_SECRETS_KEY_FILE", cfg.SecretsKeyFile)
	add("ORCHEO_MAX_BODY_BYTES", strconv.FormatInt(cfg.MaxBodyBytes, 10))
	add("ORCHEO_HTTP_READ_HEADER_TIMEOUT", cfg.HTTPReadHeaderTimeout.String())
	add("ORCHEO_HTTP_READ_TIMEOUT", cfg.HTTPReadTimeout.String())
	add("ORCHEO_HTTP_WRITE_TIMEOUT", cfg.HTTPWriteTimeout.String())
	add("ORCHEO_HTTP_IDLE_TIMEOUT", cfg.HTTPIdleTimeout.String())
	add("ORCHEO_HTTP_MAX_UNAUTHENTICATED", itoa(cfg.HTTPMaxUnauthenticated))
	add("ORCHEO_HTTP_MAX_UNAUTHENTICATED_PER_IP", itoa(cfg.HTTPMaxUnauthenticatedPerIP))
	add("ORCHEO_HTTP_TRUSTED_PROXIES", prefixList(cfg.HTTPTrustedProxies))
	add("ORCHEO_WORKER_CONCURRENCY", itoa(cfg.Concurrency))
	workerName := cfg.WorkerName
	if workerName == "" {
		workerName = "<host>-<pid>"
	}
	add("ORCHEO_WORKER_NAME", workerName)
	add("ORCHEO_QUEUES", strings.Join(cfg.Queues, ","))
	add("ORCHEO_RESULT_BACKEND", cfg.ResultBackend)
	add("ORCHEO_LEASE_DURATION", orDefault(tc.LeaseDuration, cfg.LeaseDuration))
	add("ORCHEO_HEARTBEAT_INTERVAL", tc.HeartbeatInterval.String())
	add("ORCHEO_CONSUMER_TTL", tc.ConsumerTTL.String())
	add("ORCHEO_RESCUE_INTERVAL", tc.RescueInterval.String())
	add("ORCHEO_REENQUEUE_AFTER", tc.ReenqueueAfter.String())
	add("ORCHEO_RUN_RETENTION", formatRetention(cfg.RunRetention))
	add("ORCHEO_WORKER_DRAIN_TIMEOUT", orDefault(cfg.DrainTimeout, tasks.WorkerDrainTimeoutDefault))
	add("ORCHEO_HEALTH_GRACE", orDefault(cfg.HealthGrace, tasks.HealthGraceDefault))
	add("ORCHEO_WORKER_METRICS_ADDR", cfg.WorkerMetricsAddr)
	add("ORCHEO_PPROF_ADDR", cfg.PprofAddr)
	add("ORCHEO_REQUEUE_INTERVAL", cfg.RequeueEvery.String())
	add("ORCHEO_LOG_LEVEL", cfg.LogLevel)
	add("ORCHEO_LOG_FORMAT", cfg.LogFormat)
	dataDir, err := cfg.dataDir()
	if err != nil {
		dataDir = ""
	}
	add("ORCHEO_DATA_DIR", dataDir)
	add("ORCHEO_HTTP_ALLOW_PRIVATE", btoa(cfg.HTTPAllowPrivate))
	cidrs := make([]string, 0, len(cfg.HTTPAllowCIDRs))
	for _, p := range cfg.HTTPAllowCIDRs {
		cidrs = append(cidrs, p.String())
	}
	add("ORCHEO_HTTP_ALLOW_CIDRS", strings.Join(cidrs, ","))
	// Only the names: their values are the workflows' business and may be
	// secrets of their own.
	add("ORCHEO_WORKFLOW_ENV", strings.Join(splitList(getenv("ORCHEO_WORKFLOW_ENV")), ","))
	add("ORCHEO_DELAY_SUSPEND_AFTER", cfg.DelaySuspendAfter.String())
	add("ORCHEO_MAX_CHILD_DEPTH", itoa(cfg.MaxChildDepth))
	add("ORCHEO_MAX_CHILD_RUNS", itoa(cfg.MaxChildRuns))
	add("ORCHEO_MAX_RUN_TREE", itoa(cfg.MaxRunTree))
	add("CRON_DISPATCH_INTERVAL", cfg.Cron.Interval.String())
	add("ORCHEO_CRON_RELOAD_INTERVAL", cfg.Cron.ReloadInterval.String())
	add("ORCHEO_CRON_GRACE", cfg.Cron.Grace.String())
	add("ORCHEO_CRON_SECONDS", btoa(cfg.Cron.Seconds))
	add("ORCHEO_BEAT_HEALTH_ADDR", cfg.Cron.HealthAddr)
	add("ORCHEO_URL", maskURL(cfg.URL))
	add("ORCHEO_TOKEN", secret(cfg.Token), "ORCHEO_TOKEN", "ORCHEO_API_TOKEN")
	return out
}

// formatRetention prints a retention in days when it is whole days, as
// ORCHEO_RUN_RETENTION is usually written; 0 keeps every run.
func formatRetention(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "0 (keep every run)"
	case d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}

// secretParam matches a parameter whose name says it holds a secret, in a
// URL's query (?password=…&sentinel_password=…) or a key=value connection
// string (password='…'), with its value.
var secretParam = regexp.MustCompile(`(?i)(\b[a-z_]*(?:pass|secret|token)[a-z_]*\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s#]*)`)

// maskURL replaces the password of a URL's user info and the values of
// its secret parameters with ****; the rest is printed as set. It errs
// towards masking: everything between the user name and the last '@' is
// the password, since a password may hold an unescaped '@' or '/'.
func maskURL(s string) string {
	if s == "" {
		return ""
	}
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest := s[:i+3], s[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
				rest = user + ":" + masked + rest[at:]
			}
		}
		s = scheme + rest
	}
	return secretParam.ReplaceAllString(s, "${1}"+masked)
}
