// Package ui is orcheo's web UI: server-rendered pages (html/template) and
// a little plain JavaScript, embedded in the binary and served under /ui/
// by orcheo api and orcheo dev. It knows only the root interfaces and a
// Tokens it is handed (cmd/orcheo adapts the API's), never server/ or
// tasks/.
//
// Security model (docs/ui.md): a login with an API token sets a stateless
// session cookie (session.go); every POST needs the session's CSRF token
// and a same-origin Origin (or Referer); a read token sees everything and
// acts on nothing; every answer carries a strict CSP and no secret is ever
// rendered.
package ui

import (
	"context"
	"crypto/rand"
	"embed"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// The scopes the UI tells apart; a token of any other scope cannot log in.
const (
	ScopeAdmin = "admin"
	ScopeRead  = "read"
)

// Token is an API token as the UI sees it: its name and scope, never its
// value.
type Token struct {
	Name  string
	Scope string
}

// Tokens is what the UI asks of the API's token set, which may change
// while it serves (SIGHUP). cmd/orcheo implements it on server.Server.
type Tokens interface {
	// Enabled reports whether the API asks for tokens at all.
	Enabled() bool
	// Authenticate returns the token whose value is value, comparing in
	// constant time.
	Authenticate(value string) (Token, bool)
	// SessionKey returns a key derived from the stored hash of the token
	// named name, and that token, or false if no token has that name now.
	SessionKey(name string) ([]byte, Token, bool)
}

// QueueDepths reads how many messages wait on a queue (tasks.Queue).
type QueueDepths interface {
	QueueDepth(ctx context.Context, queue string) (ready, delayed int64, err error)
}

// Defaults for the zero fields of Config.
const (
	// SessionLifetimeDefault bounds a session: a copied cookie works at
	// most this long.
	SessionLifetimeDefault = 12 * time.Hour
	// PollIntervalDefault is how often a live stream reads the store.
	PollIntervalDefault = time.Second
	// HeartbeatIntervalDefault is how often an idle live stream sends a
	// comment, so proxies keep it open and a gone client is noticed.
	HeartbeatIntervalDefault = 15 * time.Second
	// StreamLifetimeDefault ends a live stream after this long; the
	// browser's EventSource reconnects at once, with the cookie checked
	// again.
	StreamLifetimeDefault = 10 * time.Minute
	// MaxStreamsDefault caps the live streams of one process.
	MaxStreamsDefault = 200
)

// Config is what the UI needs. Runs, Workflows, Submitter and Tokens are
// required; Cancels is optional (nil: a running run's worker finds its
// cancel at its next check, as for the API).
type Config struct {
	Runs      orcheo.RunService
	Workflows orcheo.WorkflowService
	// Submitter publishes a run retried by hand: the API's path and its
	// promise (a run answered as retried will execute).
	Submitter orcheo.RunSubmitter
	Cancels   orcheo.CancelNotifier
	Tokens    Tokens
	Logger    logrus.FieldLogger

	// What the workflow and system pages read besides the runs; while one
	// is nil its part of the page says it is not available here.
	Triggers      orcheo.TriggerService // webhook configs
	Cron          orcheo.CronService    // cron triggers and their last dispatch
	CronScheduler orcheo.CronScheduler  // the schedule package's next-slot maths
	// Workers are the workers online and what each runs (orcheo inspect
	// active): tasks.Inspector, passed in so the UI imports no tasks.
	Workers   orcheo.WorkerService
	Queues    QueueDepths
	RunStats  orcheo.RunStatsService
	RunCounts orcheo.RunCounts
	// QueueNames are the configured queues whose depths the system page
	// shows, besides the workers' and the workflows' queues.
	QueueNames []string
	// BeatLeader returns the holder of the beat's leadership, "" when no
	// beat holds it.
	BeatLeader func(ctx context.Context) (string, error)

	SessionLifetime   time.Duration
	PollInterval      time.Duration
	HeartbeatInterval time.Duration
	StreamLifetime    time.Duration
	MaxStreams        int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Handler serves the UI. Build it with New; safe for concurrent use.
type Handler struct {
	cfg     Config
	router  *mux.Router
	pages   *pages
	logins  *loginLimiter
	streams *streams
	names   workflowNames
	// anonKey signs sessions while the API asks for no token: random per
	// process, so such sessions end with it.
	anonKey []byte

	shutdownOnce sync.Once
	done         chan struct{}
}

// New returns the UI's handler; it panics if a required Config field is
// nil, which is a wiring mistake.
func New(cfg Config) *Handler {
	if cfg.Runs == nil || cfg.Workflows == nil || cfg.Submitter == nil || cfg.Tokens == nil {
		panic("ui: Runs, Workflows, Submitter and Tokens must be set")
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.StandardLogger()
	}
	cfg.Logger = cfg.Logger.WithField("component", "ui")
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = SessionLifetimeDefault
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = PollIntervalDefault
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = HeartbeatIntervalDefault
	}
	if cfg.StreamLifetime <= 0 {
		cfg.StreamLifetime = StreamLifetimeDefault
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = MaxStreamsDefault
	}
	h := &Handler{
		cfg: cfg, pages: mustParsePages(), logins: newLoginLimiter(),
		streams: newStreams(cfg.MaxStreams), anonKey: make([]byte, 32), done: make(chan struct{}),
	}
	_, _ = rand.Read(h.anonKey)
	h.router = mux.NewRouter().UseEncodedPath()
	h.router.NotFoundHandler = http.HandlerFunc(h.handleNotFound)
	h.router.MethodNotAllowedHandler = http.HandlerFunc(h.handleMethodNotAllowed)
	static, _ := fs.Sub(staticFS, "static")
	h.router.PathPrefix("/ui/static/").Handler(http.StripPrefix("/ui/static/", http.FileServer(http.FS(static)))).Methods(http.MethodGet, http.MethodHead)
	h.router.HandleFunc("/ui/login", h.handleLoginForm).Methods(http.MethodGet, http.MethodHead)
	h.router.HandleFunc("/ui/login", h.handleLogin).Methods(http.MethodPost)
	h.router.Handle("/ui/logout", h.action(h.handleLogout, false)).Methods(http.MethodPost)
	h.router.Handle("/ui/", h.page(h.handleHome)).Methods(http.MethodGet, http.MethodHead)
	h.router.Handle("/ui/runs", h.page(h.handleRuns)).Methods(http.MethodGet, http.MethodHead)
	h.router.Handle("/ui/runs/events", h.page(h.handleEvents)).Methods(http.MethodGet)
	h.router.Handle("/ui/runs/bulk", h.action(h.handleRunsBulk, true)).Methods(http.MethodPost)
	h.router.Handle("/ui/runs/{id}", h.page(h.handleRun)).Methods(http.MethodGet, http.MethodHead)
	h.router.Handle("/ui/runs/{id}/cancel", h.action(h.handleRunCancel, true)).Methods(http.MethodPost)
	h.router.Handle("/ui/runs/{id}/retry", h.action(h.handleRunRetry, true)).Methods(http.MethodPost)
	h.router.Handle("/ui/workflows", h.page(h.handleWorkflows)).Methods(http.MethodGet, http.MethodHead)
	h.router.Handle("/ui/workflows/{ref}", h.page(h.handleWorkflow)).Methods(http.MethodGet, http.MethodHead)
	h.router.Handle("/ui/workflows/{ref}/run", h.actionSized(h.handleWorkflowRun, true, maxRunFormBytes)).Methods(http.MethodPost)
	h.router.Handle("/ui/system", h.page(h.handleSystem)).Methods(http.MethodGet, http.MethodHead)
	return h
}

// ServeHTTP serves a UI request, with the security headers on every
// answer, errors and redirects included.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	h.router.ServeHTTP(w, r)
}

// Shutdown ends every live stream; the server calls it when it shuts
// down. Safe to call twice.
func (h *Handler) Shutdown() { h.shutdownOnce.Do(func() { close(h.done) }) }

func (h *Handler) now() time.Time {
	if h.cfg.Now != nil {
		return h.cfg.Now()
	}
	return time.Now()
}

func (h *Handler) lifetime() time.Duration { return h.cfg.SessionLifetime }

func (h *Handler) authEnabled() bool { return h.cfg.Tokens.Enabled() }

// handleHome sends / to the runs page.
func (h *Handler) handleHome(w http.ResponseWriter, r *http.Request, s *session) {
	http.Redirect(w, r, "/ui/runs", http.StatusFound)
}
