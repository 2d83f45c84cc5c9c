// Package server is orcheo's HTTP API: workflows, runs, webhook triggers and
// health, on gorilla/mux. Handlers depend only on the root interfaces, which
// cmd/orcheo fills with the real store, queue and engine.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// Defaults used when the corresponding Server field is zero.
const (
	MaxBodyBytesDefault  = 1 << 20
	ShutdownTimeout      = 10 * time.Second
	readyCheckTimeout    = 3 * time.Second
	enqueueTimeout       = 10 * time.Second
	runsListLimitDefault = 50
	listLimitMax         = 1000
)

// Defaults NewServer gives the connection timeouts and the cap on
// unauthenticated requests.
const (
	// ReadHeaderTimeoutDefault bounds reading a request's headers.
	ReadHeaderTimeoutDefault = 10 * time.Second
	// ReadTimeoutDefault bounds reading a whole request, body included, so
	// a client trickling its body cannot hold a connection open.
	ReadTimeoutDefault = 15 * time.Second
	// WriteTimeoutDefault bounds a request from the end of its headers to
	// the end of its answer: the body read, the handler (a run's insert
	// and publish take up to submit's write and publish timeouts) and the
	// write. No route long-polls: the CLI's --wait polls GET
	// /api/runs/{id}.
	WriteTimeoutDefault = 60 * time.Second
	// IdleTimeoutDefault bounds a keep-alive connection between requests.
	IdleTimeoutDefault = 120 * time.Second
	// MaxUnauthenticatedDefault caps the unauthenticated requests (the
	// webhook route, without the token) handled at once.
	MaxUnauthenticatedDefault = 100
	// MaxUnauthenticatedPerIPDefault caps them per client address (per
	// /64 for IPv6).
	MaxUnauthenticatedPerIPDefault = 20
)

// Server is the HTTP API. Assign its fields before Open; they are read on
// every request and must not change while it serves.
type Server struct {
	Workflows orcheo.WorkflowService
	Runs      orcheo.RunService
	Triggers  orcheo.TriggerService
	// Submitter stores and publishes the runs the API starts (manual
	// runs, webhooks, a retry by hand): the one path that keeps the
	// promise that a 2xx means the run will execute.
	Submitter orcheo.RunSubmitter
	Engine    orcheo.Engine

	// Cron, CronScheduler and CronDispatcher serve the cron routes; while
	// any is nil those routes answer 503.
	Cron           orcheo.CronService
	CronScheduler  orcheo.CronScheduler
	CronDispatcher orcheo.CronDispatcher
	// Workers serves the operators' routes (GET /api/workers, GET
	// /api/inspect/scheduled, POST /api/control/shutdown: workers.go);
	// while nil they answer 503. WorkerQueues are queues whose delayed
	// sets /api/inspect/scheduled reads besides the online workers'.
	Workers      orcheo.WorkerService
	WorkerQueues []string
	// Cancels tells workers at once of a cancel requested on a running run;
	// nil leaves it to their periodic check of the database.
	Cancels orcheo.CancelNotifier

	// Tokens are the bearer tokens the API accepts, each with a name and a
	// scope (auth.go: requiredScopes decides who may call what). The
	// set it holds may change while the server serves, through Tokens.Set
	// (cmd/orcheo re-reads the token file on SIGHUP).
	Tokens *Tokens
	// Token, if set, is one more token, of scope admin, named "default"
	// (DefaultTokenName). With neither Token nor Tokens, authentication
	// is off, which is only acceptable on a loopback address (orcheo dev).
	Token string

	Logger logrus.FieldLogger

	// Addr is the address Open listens on, e.g. "127.0.0.1:8080" or ":0".
	Addr string

	// MaxBodyBytes caps every request body; larger bodies get 413.
	MaxBodyBytes int64

	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are
	// those of net/http.Server, read by Open; zero means no timeout.
	// NewServer sets the ...Default values.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration

	// MaxUnauthenticated caps the requests without a valid bearer token
	// (the webhook route, unknown paths; not /healthz and /readyz) served
	// at once, and MaxUnauthenticatedPerIP those from one client address
	// (one /64 for IPv6). A request over either cap is answered 503 with
	// Retry-After at once, without reading its body. Zero or less turns a
	// cap off. Behind a reverse proxy every request comes from the proxy's
	// address, so the per-address cap becomes a second global one, unless
	// the proxy is in TrustedProxies.
	MaxUnauthenticated      int
	MaxUnauthenticatedPerIP int

	// TrustedProxies are the reverse proxies (ORCHEO_HTTP_TRUSTED_PROXIES)
	// whose X-Forwarded-For names the client and whose X-Forwarded-Proto
	// says https: from a peer in one, resolveClient (client_addr.go) gives
	// the request its client's address. Empty: those headers are ignored.
	TrustedProxies []netip.Prefix

	// ReadyChecks are pinged by /readyz, by name ("database", "redis").
	ReadyChecks map[string]orcheo.Pinger

	// Metrics serves GET /metrics (Prometheus); nil answers 404. It needs
	// a token of scope metrics or admin while authentication is on.
	Metrics http.Handler

	// Verifier checks webhook signatures and shared secrets over the raw
	// request bytes; WebhookGuard keeps rate-limit windows and the
	// signatures already seen (in Redis, shared by every API process).
	// While either is nil, a webhook whose config needs it answers 503
	// and stores nothing.
	Verifier     orcheo.WebhookVerifier
	WebhookGuard orcheo.WebhookGuard
	// Secrets seals webhook secrets before they are stored and opens them
	// to verify requests (secrets.Box under ORCHEO_SECRETS_KEY). While nil,
	// a config that brings a secret answers 503 saying to set the key.
	Secrets orcheo.SecretBox
	// OnWebhookRefused, if set, is told of every webhook request the
	// route refuses, with a short reason from a fixed set
	// (metrics.WebhookRefusalReasons: not_found, disabled, archived,
	// method, too_large, bad_request, required, verify, replay,
	// rate_limit, rate_limit_ip, unavailable), for the metrics.
	OnWebhookRefused func(reason string)

	// Changes, if set, carries the news of changed workflows between the
	// API processes (tasks.ChangeFeed): the write handlers publish on it,
	// and with it Open starts the webhook route's cache (cache.go), which
	// serves only while its subscription is up. While nil, every webhook
	// reads its workflow and config from the store.
	Changes orcheo.ChangeFeed
	// WebhookCacheTTL and WebhookCacheSize bound the age and the number
	// of cached entries; zero means WebhookCacheTTLDefault and
	// WebhookCacheSizeDefault.
	WebhookCacheTTL  time.Duration
	WebhookCacheSize int

	// UI, if set, serves the web UI under /ui/ (ui.go: routeUI); while
	// nil, /ui/ answers 404.
	UI UIHandler

	cache     *webhookCache
	stopCache func()

	ln      net.Listener
	server  *http.Server
	router  *mux.Router
	handler http.Handler
	public  inFlight
}

// NewServer returns a Server with its routes registered and defaults set;
// the caller assigns the services, then calls Open.
func NewServer() *Server {
	s := &Server{
		Logger:       logrus.StandardLogger(),
		MaxBodyBytes: MaxBodyBytesDefault,
		ReadyChecks:  map[string]orcheo.Pinger{},

		ReadHeaderTimeout:       ReadHeaderTimeoutDefault,
		ReadTimeout:             ReadTimeoutDefault,
		WriteTimeout:            WriteTimeoutDefault,
		IdleTimeout:             IdleTimeoutDefault,
		MaxUnauthenticated:      MaxUnauthenticatedDefault,
		MaxUnauthenticatedPerIP: MaxUnauthenticatedPerIPDefault,
		// Routes match the escaped path, so an id or handle holding "%2F" or
		// ".." stays one segment instead of reaching another route.
		//
		// SkipClean: mux would answer a path holding "." or ".." segments
		// or "//" with a bare 301 to the cleaned path (a redirect a client
		// follows with its token); such a path matches no route instead.
		router: mux.NewRouter().UseEncodedPath().SkipClean(true),
	}
	s.router.NotFoundHandler = http.HandlerFunc(s.handleNotFound)
	s.router.MethodNotAllowedHandler = http.HandlerFunc(s.handleMethodNotAllowed)

	s.registerHealthRoutes(s.router)
	s.registerWorkflowRoutes(s.router)
	s.registerRunRoutes(s.router)
	s.registerWebhookRoutes(s.router)
	s.registerWebhookConfigRoutes(s.router)
	s.registerCronRoutes(s.router)
	s.registerWorkerRoutes(s.router)
	s.registerRunPurgeRoutes(s.router)
	s.router.Handle("/metrics", http.HandlerFunc(s.handleMetrics)).Methods(http.MethodGet)

	// resolveClient comes first, so every later one (the log, the caps,
	// the UI) sees the client's address behind a trusted proxy.
	// Outermost first: a panic anywhere is recovered inside the request log,
	// so the log line shows the 500. The cap on unauthenticated requests
	// comes after authentication, which tells them apart. The web UI
	// checks its own sessions (routeUI), and sends a request without one
	// through the same cap.
	s.handler = s.resolveClient(s.logRequests(s.recoverPanics(s.limitBody(s.routeUI(s.authenticate(s.limitUnauthenticated(s.router)))))))
	return s
}

// Handler returns the complete handler, middleware included, for tests and
// for embedding the API in another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Open listens on Addr and then serves in a goroutine, so a busy port is
// reported here rather than lost in the background.
func (s *Server) Open() error {
	if s.Workflows == nil || s.Runs == nil || s.Triggers == nil || s.Submitter == nil || s.Engine == nil {
		return fmt.Errorf("server: Workflows, Runs, Triggers, Submitter and Engine must be set")
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Addr, err)
	}
	s.ln = ln
	s.startCache()
	s.server = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.WriteTimeout,
		IdleTimeout:       s.IdleTimeout,
	}
	if s.UI != nil {
		s.server.RegisterOnShutdown(s.UI.Shutdown)
	}
	go func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.WithError(err).WithField("component", "api").Error("serve")
		}
	}()
	return nil
}

// Close stops accepting connections and waits up to ShutdownTimeout for
// in-flight requests. It is safe to call on a server that was never opened.
func (s *Server) Close() error {
	if s.ln == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := s.server.Shutdown(ctx)
	if s.stopCache != nil {
		s.stopCache()
	}
	return err
}

// Port returns the port Open listens on (useful with ":0"), or 0 if the
// server is not open.
func (s *Server) Port() int {
	if s.ln == nil {
		return 0
	}
	return s.ln.Addr().(*net.TCPAddr).Port
}

// URL returns the base URL of the open server. A wildcard host is reported
// as 127.0.0.1, which is what a local client dials.
func (s *Server) URL() string {
	host := "127.0.0.1"
	if s.ln != nil {
		if ip := s.ln.Addr().(*net.TCPAddr).IP; ip != nil && !ip.IsUnspecified() {
			host = ip.String()
		}
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(s.Port()))
}

func (s *Server) maxBodyBytes() int64 {
	if s.MaxBodyBytes <= 0 {
		return MaxBodyBytesDefault
	}
	return s.MaxBodyBytes
}

// handleNotFound answers unknown routes.
func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	Error(w, r, orcheo.Errorf(orcheo.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
}

// handleMethodNotAllowed answers a known route with a wrong method, listing
// the methods the route does accept in Allow.
func (s *Server) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
	}
	Error(w, r, orcheo.Errorf(orcheo.EMETHOD, "method %s is not allowed on %s", r.Method, r.URL.Path))
}

// handleMetrics serves the Metrics handler assigned after NewServer.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if s.Metrics == nil {
		s.handleNotFound(w, r)
		return
	}
	s.Metrics.ServeHTTP(w, r)
}

// pathVar returns the unescaped route variable name.
func pathVar(r *http.Request, name string) string {
	v := mux.Vars(r)[name]
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}
