package ui

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/orcheo/orcheo"
)

// Failed logins are bounded per client address: a token is long and
// random, so guessing is hopeless anyway; the bound keeps a guesser from
// costing anything. Behind a proxy every client shares the proxy's
// address, and so its budget, unless the proxy is in
// ORCHEO_HTTP_TRUSTED_PROXIES (the server then gives each request its
// client's address).
const (
	loginFailuresMax    = 10
	loginFailuresWindow = time.Minute
	// loginClientsMax bounds the addresses remembered; when it is full
	// of addresses still inside their window, a new failing address
	// evicts the oldest window (loginLimiter), never locking out one
	// that has not failed.
	loginClientsMax = 10000
	maxTokenLength  = 4096
)

type loginView struct {
	Next    string
	NoAuth  bool
	Message string
}

// handleLoginForm shows the login form, or sends a signed-in browser on.
func (h *Handler) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if _, ok := h.readSession(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "login", nil, "Sign in", &loginView{Next: next, NoAuth: !h.authEnabled()})
}

// handleLogin checks the token of the login form and, if it is an admin
// or read token, starts a session. The form must come from this origin (no
// login CSRF). Failures are counted per client address; past
// loginFailuresMax within loginFailuresWindow the client gets 429 without
// its token being looked at.
func (h *Handler) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		h.renderError(w, r, nil, orcheo.Errorf(orcheo.EFORBIDDEN, "This sign-in did not come from the orcheo sign-in page."))
		return
	}
	client := orcheo.ClientKey(r.RemoteAddr)
	if wait, ok := h.logins.allowed(client, h.now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		h.render(w, r, http.StatusTooManyRequests, "login", nil, "Sign in",
			&loginView{Next: "/ui/runs", Message: "Too many failed sign-ins from your address; wait a minute and try again."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.renderError(w, r, nil, orcheo.Errorf(orcheo.EINVALID, "The form could not be read."))
		return
	}
	next := localPath(r.PostForm.Get("next"))
	var tok Token
	if !h.authEnabled() {
		tok = Token{Name: anonymousName, Scope: ScopeAdmin}
	} else {
		value := r.PostForm.Get("token")
		ok := false
		if value != "" && len(value) <= maxTokenLength {
			tok, ok = h.cfg.Tokens.Authenticate(value)
		}
		if !ok {
			h.logins.failed(client, h.now())
			h.cfg.Logger.WithField("client", client).Warn("ui sign-in with an invalid token")
			h.render(w, r, http.StatusUnauthorized, "login", nil, "Sign in",
				&loginView{Next: next, Message: "That token is not valid."})
			return
		}
		if tok.Scope != ScopeAdmin && tok.Scope != ScopeRead {
			h.render(w, r, http.StatusForbidden, "login", nil, "Sign in",
				&loginView{Next: next, Message: "Token " + strconv.Quote(tok.Name) + " has scope " + tok.Scope + "; the UI needs an admin or read token."})
			return
		}
	}
	key, _, ok := h.sessionKey(tok.Name)
	if !ok { // removed between the two looks
		h.render(w, r, http.StatusUnauthorized, "login", nil, "Sign in", &loginView{Next: next, Message: "That token is not valid."})
		return
	}
	now := h.now()
	expiry := now.Add(h.lifetime())
	setSessionCookie(w, r, newSessionValue(key, tok.Name, expiry), expiry, now)
	h.cfg.Logger.WithField("token", tok.Name).Info("ui sign-in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleLogout clears the session cookie (a POST with the CSRF token, so
// no other site can sign anyone out).
func (h *Handler) handleLogout(w http.ResponseWriter, r *http.Request, s *session) {
	clearSessionCookie(w, r)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// loginLimiter counts failed logins per client address in fixed windows.
// Safe for concurrent use.
//
// A full table never refuses anyone: an address with no failures of its
// own is always let try, and its first failure evicts the window that
// started earliest. Refusing new addresses instead would let a guesser
// with many (an IPv6 /48 holds 65,536 /64s) lock every real user out; an
// evicted guesser only gets a fresh budget of loginFailuresMax.
type loginLimiter struct {
	mu      sync.Mutex
	clients map[string]*loginWindow
	// order holds the windows in the order they started, oldest first,
	// so a full table evicts in constant time. A window no longer in
	// clients (ended, replaced) is skipped when it comes to the front.
	order []*loginWindow
}

type loginWindow struct {
	client   string
	start    time.Time
	failures int
}

func newLoginLimiter() *loginLimiter { return &loginLimiter{clients: map[string]*loginWindow{}} }

// allowed reports whether client may try to sign in now, and if not, how
// long until it may.
func (l *loginLimiter) allowed(client string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.clients[client]
	if w == nil {
		return 0, true
	}
	if now.Sub(w.start) >= loginFailuresWindow {
		delete(l.clients, client)
		return 0, true
	}
	if w.failures >= loginFailuresMax {
		return loginFailuresWindow - now.Sub(w.start), false
	}
	return 0, true
}

// failed counts one failed login of client.
func (l *loginLimiter) failed(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.clients[client]; w != nil && now.Sub(w.start) < loginFailuresWindow {
		w.failures++
		return
	}
	l.dropEnded(now)
	for len(l.clients) >= loginClientsMax && l.evictOldest() {
	}
	w := &loginWindow{client: client, start: now, failures: 1}
	l.clients[client] = w
	l.order = append(l.order, w)
	if len(l.order) > 2*loginClientsMax {
		l.compact() // only if the clock went back; see dropEnded
	}
}

// live reports whether w is still client's window in the table.
func (l *loginLimiter) live(w *loginWindow) bool { return l.clients[w.client] == w }

// dropEnded drops the windows at the front of order that have ended or
// left the table. Windows start in order while the clock runs forward, so
// this drops every ended one.
func (l *loginLimiter) dropEnded(now time.Time) {
	for len(l.order) > 0 {
		w := l.order[0]
		if l.live(w) {
			if now.Sub(w.start) < loginFailuresWindow {
				return
			}
			delete(l.clients, w.client)
		}
		l.popFront()
	}
}

// evictOldest removes the live window that started earliest, reporting
// whether there was one.
func (l *loginLimiter) evictOldest() bool {
	for len(l.order) > 0 {
		w := l.order[0]
		l.popFront()
		if l.live(w) {
			delete(l.clients, w.client)
			return true
		}
	}
	return false
}

func (l *loginLimiter) popFront() {
	l.order[0] = nil
	l.order = l.order[1:]
}

// compact keeps only the live windows in order, in their order.
func (l *loginLimiter) compact() {
	kept := make([]*loginWindow, 0, len(l.clients))
	for _, w := range l.order {
		if l.live(w) {
			kept = append(kept, w)
		}
	}
	l.order = kept
}
