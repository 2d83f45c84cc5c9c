package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"strings"
)

// UIHandler is the web UI as the server mounts it under /ui/ (package ui,
// wired by cmd/orcheo; the server never imports it).
type UIHandler interface {
	http.Handler
	// SessionToken returns the name of the token whose session r carries,
	// and whether that session verifies now (signature, expiry, token
	// still present), never merely a cookie: only such a request skips the
	// cap on unauthenticated requests, and its log line names the token.
	SessionToken(r *http.Request) (name string, ok bool)
	// Shutdown ends the UI's long-lived answers (its live streams), so
	// that Close does not wait ShutdownTimeout for them.
	Shutdown()
}

// routeUI sends /ui and everything under /ui/ to UI, before the bearer
// check: the UI authenticates its own requests with session cookies checked
// against the same tokens. A request with a session that verifies is not
// counted under the cap on unauthenticated requests, so a signed-in page's
// live stream does not hold a slot for as long as the page stays open;
// every other one (the login form and its POST, static files, any path
// without a session) is, as for the API, so a flood of slow requests on
// /ui/ cannot take what the cap protects.
func (s *Server) routeUI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.EscapedPath()
		if path != "/ui" && !strings.HasPrefix(path, "/ui/") {
			next.ServeHTTP(w, r)
			return
		}
		if s.UI != nil && path != "/ui" {
			if name, ok := s.UI.SessionToken(r); ok {
				if note, found := r.Context().Value(noteKey).(*requestNote); found {
					note.token = name
				}
				s.UI.ServeHTTP(w, r)
				return
			}
		}
		s.limitUnauthenticated(http.HandlerFunc(s.serveUI)).ServeHTTP(w, r)
	})
}

// serveUI answers a request under /ui: 404 without a UI, /ui itself by a
// redirect to /ui/.
func (s *Server) serveUI(w http.ResponseWriter, r *http.Request) {
	if s.UI == nil {
		s.handleNotFound(w, r)
		return
	}
	if r.URL.EscapedPath() == "/ui" {
		http.Redirect(w, r, "/ui/", http.StatusFound)
		return
	}
	s.UI.ServeHTTP(w, r)
}

// AuthEnabled reports whether the API asks for tokens; the web UI asks for
// none either while it does not (orcheo dev on loopback).
func (s *Server) AuthEnabled() bool { return s.authEnabled() }

// TokenPrincipal returns the principal of the token whose value is value,
// as a bearer token of that value would get: the web UI's login form. Every
// token is compared in constant time, as for a bearer header.
func (s *Server) TokenPrincipal(value string) (Principal, bool) {
	r := &http.Request{Header: http.Header{"Authorization": {"Bearer " + value}}}
	p, err := s.principal(r)
	return p, err == nil
}

// TokenSessionKey returns a key derived from the stored hash of the token
// named name (HMAC-SHA256 keyed by the hash, of purpose), and that token's
// principal, or false when no token has that name now. The web UI signs its
// session cookies with it: every API process derives the same key from the
// same tokens, so a session needs no server-side state, and a token removed
// or given a new value (and a SIGHUP) no longer yields the key its sessions
// were signed with, which ends them at once.
func (s *Server) TokenSessionKey(name, purpose string) ([]byte, Principal, bool) {
	var sum [sha256.Size]byte
	var p Principal
	found := false
	if s.Tokens != nil {
		if set := s.Tokens.set.Load(); set != nil {
			for _, e := range set.entries {
				if e.name == name {
					sum, p, found = e.sum, Principal{TokenName: e.name, Scope: e.scope}, true
					break
				}
			}
		}
	}
	// Token counts as "default" only when Tokens holds no such name,
	// as principal gives Tokens precedence.
	if !found && s.Token != "" && name == DefaultTokenName {
		sum, p, found = sha256.Sum256([]byte(s.Token)), Principal{TokenName: DefaultTokenName, Scope: ScopeAdmin}, true
	}
	if !found {
		return nil, Principal{}, false
	}
	mac := hmac.New(sha256.New, sum[:])
	mac.Write([]byte(purpose))
	return mac.Sum(nil), p, true
}
