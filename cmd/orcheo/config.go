package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/server"
	"github.com/orcheo/orcheo/tasks"
	"github.com/orcheo/orcheo/tasks/maintenance"
	"github.com/orcheo/orcheo/tasks/rdb"
	"github.com/sirupsen/logrus"
)

// Config is every setting orcheo reads from its environment. Each variable
// is documented once, in docs/configuration.md; nothing else reads the
// environment.
type Config struct {
	DatabaseURL   string        // ORCHEO_DATABASE_URL
	RedisURL      string        // REDIS_URL, or built from ORCHEO_REDIS_SENTINELS (redisFromEnv)
	RedisPrefix   string        // ORCHEO_REDIS_PREFIX
	HTTPAddr      string        // ORCHEO_HTTP_ADDR
	APIToken      string        // ORCHEO_API_TOKEN
	MaxBodyBytes  int64         // ORCHEO_MAX_BODY_BYTES
	Concurrency   int           // ORCHEO_WORKER_CONCURRENCY
	WorkerName    string        // ORCHEO_WORKER_NAME (orcheo worker -n; "%h" is the host)
	Queues        []string      // ORCHEO_QUEUES
	ResultBackend string        // ORCHEO_RESULT_BACKEND
	LeaseDuration time.Duration // ORCHEO_LEASE_DURATION
	RequeueEvery  time.Duration // ORCHEO_REQUEUE_INTERVAL
	LogLevel      string        // ORCHEO_LOG_LEVEL
	LogFormat     string        // ORCHEO_LOG_FORMAT
	DataDir       string        // ORCHEO_DATA_DIR (orcheo dev only)

	// API tokens with a name and a scope (issue 9), besides APIToken.
	APITokens     []server.APIToken // ORCHEO_API_TOKENS (tokens.go)
	APITokensFile string            // ORCHEO_API_TOKENS_FILE, read when the API starts and on SIGHUP
	// The key that seals webhook secrets at rest (issue 9; secrets.go).
	SecretsKey     string // ORCHEO_SECRETS_KEY
	SecretsKeyFile string // ORCHEO_SECRETS_KEY_FILE, read at start when ORCHEO_SECRETS_KEY is unset

	// Reliable delivery (issue 5, part A).
	HeartbeatInterval time.Duration // ORCHEO_HEARTBEAT_INTERVAL
	ConsumerTTL       time.Duration // ORCHEO_CONSUMER_TTL
	RescueInterval    time.Duration // ORCHEO_RESCUE_INTERVAL
	ReenqueueAfter    time.Duration // ORCHEO_REENQUEUE_AFTER
	DrainTimeout      time.Duration // ORCHEO_WORKER_DRAIN_TIMEOUT
	// RunRetention is how long finished runs are kept (the leader
	// worker's maintenance.Retention); 0 keeps them forever.
	RunRetention time.Duration // ORCHEO_RUN_RETENTION, a duration or days (30d)
	// HealthGrace is how long a worker's Redis or database may be
	// unreachable before its /healthz answers 503 (tasks.Worker.HealthGrace).
	HealthGrace time.Duration // ORCHEO_HEALTH_GRACE

	// The API's connection timeouts and its cap on unauthenticated
	// requests (issue 8); see server.Server.
	HTTPReadHeaderTimeout       time.Duration // ORCHEO_HTTP_READ_HEADER_TIMEOUT
	HTTPReadTimeout             time.Duration // ORCHEO_HTTP_READ_TIMEOUT
	HTTPWriteTimeout            time.Duration // ORCHEO_HTTP_WRITE_TIMEOUT
	HTTPIdleTimeout             time.Duration // ORCHEO_HTTP_IDLE_TIMEOUT
	HTTPMaxUnauthenticated      int           // ORCHEO_HTTP_MAX_UNAUTHENTICATED, 0 = no cap
	HTTPMaxUnauthenticatedPerIP int           // ORCHEO_HTTP_MAX_UNAUTHENTICATED_PER_IP, 0 = no cap
	// The reverse proxies whose X-Forwarded-For and X-Forwarded-Proto the
	// API believes (server.Server.TrustedProxies); none by default.
	HTTPTrustedProxies []netip.Prefix // ORCHEO_HTTP_TRUSTED_PROXIES

	// WorkerMetricsAddr is where orcheo worker serves /healthz and
	// /metrics; "" (the default) serves nothing, since several workers on
	// one host each need their own port.
	WorkerMetricsAddr string // ORCHEO_WORKER_METRICS_ADDR
	PprofAddr         string // ORCHEO_PPROF_ADDR (pprof.go)

	// Workflow engine (issue 3).
	HTTPAllowPrivate  bool              // ORCHEO_HTTP_ALLOW_PRIVATE
	HTTPAllowCIDRs    []netip.Prefix    // ORCHEO_HTTP_ALLOW_CIDRS
	WorkflowEnv       map[string]string // values of the names in ORCHEO_WORKFLOW_ENV
	DelaySuspendAfter time.Duration     // ORCHEO_DELAY_SUSPEND_AFTER

	// Bounds on workflows that start each other (tasks.RunStarter).
	MaxChildDepth int // ORCHEO_MAX_CHILD_DEPTH
	MaxChildRuns  int // ORCHEO_MAX_CHILD_RUNS
	MaxRunTree    int // ORCHEO_MAX_RUN_TREE

	// Cron triggers and the beat (issue 4).
	Cron CronConfig

	// Client side: the CLI's commands that talk to a running API.
	URL   string // ORCHEO_URL
	Token string // ORCHEO_TOKEN, or ORCHEO_API_TOKEN when unset
}

// DefaultConfig returns the configuration used when no variable is set.
func DefaultConfig() Config {
	return Config{
		RedisURL:      "redis://127.0.0.1:6379/0",
		RedisPrefix:   "orcheo",
		HTTPAddr:      "127.0.0.1:8080",
		MaxBodyBytes:  1 << 20,
		Concurrency:   tasks.ConcurrencyDefault,
		Queues:        []string{orcheo.DefaultQueue},
		ResultBackend: "redis",
		LeaseDuration: 30 * time.Second,
		RequeueEvery:  5 * time.Second,
		RunRetention:  maintenance.RetentionDefault,
		LogLevel:      "info",
		LogFormat:     "auto",
		URL:           "http://127.0.0.1:8080",
		Cron:          defaultCronConfig(),

		DelaySuspendAfter: engine.DefaultSuspendDelaysAfter,
		MaxChildDepth:     tasks.MaxChildDepthDefault,
		MaxChildRuns:      tasks.MaxChildRunsDefault,
		MaxRunTree:        tasks.MaxRunTreeDefault,

		HTTPReadHeaderTimeout:       server.ReadHeaderTimeoutDefault,
		HTTPReadTimeout:             server.ReadTimeoutDefault,
		HTTPWriteTimeout:            server.WriteTimeoutDefault,
		HTTPIdleTimeout:             server.IdleTimeoutDefault,
		HTTPMaxUnauthenticated:      server.MaxUnauthenticatedDefault,
		HTTPMaxUnauthenticatedPerIP: server.MaxUnauthenticatedPerIPDefault,
	}
}

// ConfigFromEnv reads the environment over DefaultConfig. getenv is
// os.Getenv except in tests.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	var errs []string
	// wholeNumber reads a whole number of at least min; want says what
	// is expected.
	wholeNumber := func(name string, dst *int, min int, want string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < min {
				errs = append(errs, fmt.Sprintf("%s=%q: want %s", name, v, want))
				return
			}
			*dst = n
		}
	}
	integer := func(name string, dst *int) { wholeNumber(name, dst, 1, "a positive whole number") }
	duration := func(name string, dst *time.Duration) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Sprintf("%s=%q: want a positive duration such as 30s or 5m", name, v))
				return
			}
			*dst = d
		}
	}
	str("ORCHEO_DATABASE_URL", &c.DatabaseURL)
	str("REDIS_URL", &c.RedisURL)
	c.redisFromEnv(getenv, &errs)
	str("ORCHEO_REDIS_PREFIX", &c.RedisPrefix)
	str("ORCHEO_HTTP_ADDR", &c.HTTPAddr)
	str("ORCHEO_API_TOKEN", &c.APIToken)
	c.apiTokensFromEnv(getenv, &errs)
	str("ORCHEO_SECRETS_KEY", &c.SecretsKey)
	str("ORCHEO_SECRETS_KEY_FILE", &c.SecretsKeyFile)
	maxBody := int(c.MaxBodyBytes)
	integer("ORCHEO_MAX_BODY_BYTES", &maxBody)
	c.MaxBodyBytes = int64(maxBody)
	integer("ORCHEO_WORKER_CONCURRENCY", &c.Concurrency)
	str("ORCHEO_WORKER_NAME", &c.WorkerName)
	if v := strings.TrimSpace(getenv("ORCHEO_QUEUES")); v != "" {
		c.Queues = splitList(v)
	}
	str("ORCHEO_RESULT_BACKEND", &c.ResultBackend)
	duration("ORCHEO_LEASE_DURATION", &c.LeaseDuration)
	duration("ORCHEO_HEARTBEAT_INTERVAL", &c.HeartbeatInterval)
	duration("ORCHEO_CONSUMER_TTL", &c.ConsumerTTL)
	duration("ORCHEO_RESCUE_INTERVAL", &c.RescueInterval)
	duration("ORCHEO_REENQUEUE_AFTER", &c.ReenqueueAfter)
	duration("ORCHEO_WORKER_DRAIN_TIMEOUT", &c.DrainTimeout)
	if v := strings.TrimSpace(getenv("ORCHEO_RUN_RETENTION")); v != "" {
		d, err := orcheo.ParseAge(v, true)
		if err != nil {
			errs = append(errs, fmt.Sprintf("ORCHEO_RUN_RETENTION=%q: want 0 (keep every run) or an age such as 30d or 720h", v))
		}
		c.RunRetention = d
	}
	duration("ORCHEO_HEALTH_GRACE", &c.HealthGrace)
	duration("ORCHEO_REQUEUE_INTERVAL", &c.RequeueEvery)
	duration("ORCHEO_DELAY_SUSPEND_AFTER", &c.DelaySuspendAfter)
	integer("ORCHEO_MAX_CHILD_DEPTH", &c.MaxChildDepth)
	integer("ORCHEO_MAX_CHILD_RUNS", &c.MaxChildRuns)
	integer("ORCHEO_MAX_RUN_TREE", &c.MaxRunTree)
	duration("ORCHEO_HTTP_READ_HEADER_TIMEOUT", &c.HTTPReadHeaderTimeout)
	duration("ORCHEO_HTTP_READ_TIMEOUT", &c.HTTPReadTimeout)
	duration("ORCHEO_HTTP_WRITE_TIMEOUT", &c.HTTPWriteTimeout)
	duration("ORCHEO_HTTP_IDLE_TIMEOUT", &c.HTTPIdleTimeout)
	limit := func(name string, dst *int) { wholeNumber(name, dst, 0, "a whole number, 0 for no cap") }
	limit("ORCHEO_HTTP_MAX_UNAUTHENTICATED", &c.HTTPMaxUnauthenticated)
	limit("ORCHEO_HTTP_MAX_UNAUTHENTICATED_PER_IP", &c.HTTPMaxUnauthenticatedPerIP)
	if proxies, err := server.ParseTrustedProxies(getenv("ORCHEO_HTTP_TRUSTED_PROXIES")); err != nil {
		errs = append(errs, "ORCHEO_HTTP_TRUSTED_PROXIES: "+err.Error())
	} else {
		c.HTTPTrustedProxies = proxies
	}
	if c.HTTPWriteTimeout <= c.HTTPReadTimeout {
		// The write deadline counts from the end of the headers, so it
		// covers reading the body too.
		errs = append(errs, fmt.Sprintf("ORCHEO_HTTP_WRITE_TIMEOUT (%s) must be longer than ORCHEO_HTTP_READ_TIMEOUT (%s)", c.HTTPWriteTimeout, c.HTTPReadTimeout))
	}
	str("ORCHEO_LOG_LEVEL", &c.LogLevel)
	str("ORCHEO_LOG_FORMAT", &c.LogFormat)
	str("ORCHEO_DATA_DIR", &c.DataDir)
	str("ORCHEO_WORKER_METRICS_ADDR", &c.WorkerMetricsAddr)
	c.PprofAddr = pprofAddr(getenv("ORCHEO_PPROF_ADDR"), &errs)
	if v := strings.TrimSpace(getenv("ORCHEO_HTTP_ALLOW_PRIVATE")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("ORCHEO_HTTP_ALLOW_PRIVATE=%q: want true or false", v))
		}
		c.HTTPAllowPrivate = b
	}
	for _, v := range splitList(getenv("ORCHEO_HTTP_ALLOW_CIDRS")) {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("ORCHEO_HTTP_ALLOW_CIDRS: %q is not a CIDR such as 10.0.0.0/8", v))
			continue
		}
		c.HTTPAllowCIDRs = append(c.HTTPAllowCIDRs, p.Masked())
	}
	// Only the names the operator lists are read, so a workflow never
	// sees the rest of the environment (database URL, tokens).
	for _, name := range splitList(getenv("ORCHEO_WORKFLOW_ENV")) {
		if c.WorkflowEnv == nil {
			c.WorkflowEnv = map[string]string{}
		}
		c.WorkflowEnv[name] = getenv(name)
	}
	c.Cron.fromEnv(getenv, duration, &errs)
	str("ORCHEO_URL", &c.URL)
	c.Token = c.APIToken
	str("ORCHEO_TOKEN", &c.Token)
	switch c.ResultBackend {
	case "redis", "none":
	default:
		errs = append(errs, fmt.Sprintf("ORCHEO_RESULT_BACKEND=%q: want redis or none", c.ResultBackend))
	}
	switch c.LogFormat {
	case "auto", "json", "text":
	default:
		errs = append(errs, fmt.Sprintf("ORCHEO_LOG_FORMAT=%q: want auto, json or text", c.LogFormat))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// prefixList is prefixes as a comma-separated list, as orcheo config
// shows them.
func prefixList(prefixes []netip.Prefix) string {
	out := make([]string, len(prefixes))
	for i, p := range prefixes {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}

// redisFromEnv turns ORCHEO_REDIS_SENTINELS (comma-separated host:port)
// and ORCHEO_REDIS_SENTINEL_MASTER into a redis+sentinel:// RedisURL: a
// primary managed by Redis Sentinel. REDIS_URL still gives the password and
// the database (and, if it is itself a redis+sentinel:// URL, whichever of
// the two variables is unset). Every process then opens the one client of
// that URL (rdb.Open).
func (c *Config) redisFromEnv(getenv func(string) string, errs *[]string) {
	sentinels := splitList(getenv("ORCHEO_REDIS_SENTINELS"))
	master := strings.TrimSpace(getenv("ORCHEO_REDIS_SENTINEL_MASTER"))
	if len(sentinels) == 0 && master == "" {
		return
	}
	u, err := rdb.SentinelURL(sentinels, master, c.RedisURL)
	if err != nil {
		*errs = append(*errs, fmt.Sprintf("ORCHEO_REDIS_SENTINELS, ORCHEO_REDIS_SENTINEL_MASTER: %v", err))
		return
	}
	c.RedisURL = u
}

// dataDir is where orcheo dev keeps its SQLite file: ORCHEO_DATA_DIR, else
// $XDG_DATA_HOME/orcheo, else ~/.local/share/orcheo.
func (c Config) dataDir() (string, error) {
	if c.DataDir != "" {
		return c.DataDir, nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "orcheo"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find a data directory (set ORCHEO_DATA_DIR): %w", err)
	}
	return filepath.Join(home, ".local", "share", "orcheo"), nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// engineOptions is the part of Config the workflow engine reads.
func (c Config) engineOptions(log logrus.FieldLogger, runs orcheo.RunStarter) engine.Options {
	return engine.Options{
		Logger: log,
		HTTP:   engine.HTTPOptions{AllowPrivate: c.HTTPAllowPrivate, AllowCIDRs: c.HTTPAllowCIDRs},
		Env:    c.WorkflowEnv,
		Runs:   runs,

		SuspendDelaysAfter: c.DelaySuspendAfter,
	}
}
