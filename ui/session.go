package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sessions are stateless: the cookie carries the token's name, an expiry
// and a random nonce, and an HMAC over them under a key derived from the
// token's own stored hash (Tokens.SessionKey). Every request looks the
// name up in the live token set and checks the HMAC, so:
//   - any API replica verifies any session with nothing shared but the
//     token set it already has;
//   - removing a token, or giving it a new value, and SIGHUP ends its
//     sessions at once: the key they were signed with is gone;
//   - a session's scope is the token's scope now, not at login.
// A logout clears the cookie in that browser; a copied cookie stays valid
// until it expires, which is why its lifetime is bounded (Config.Session
// Lifetime) and why revoking the token is the way to end every session.

// sessionCookie is the session cookie's name. The __Host- prefix is not
// used because the cookie is scoped to Path=/ui/.
const sessionCookie = "orcheo_session"

// sessionPurpose and csrfPurpose separate the keys and MACs of one token.
const (
	sessionPurpose = "orcheo ui session v1"
	csrfPurpose    = "orcheo ui csrf v1"
)

// anonymousName names the session of a UI whose API asks for no token.
const anonymousName = "-"

// session is a verified session cookie.
type session struct {
	name   string // the token's name
	scope  string
	expiry time.Time
	mac    []byte // the cookie's MAC: what the CSRF token is derived from
	key    []byte
}

// canAct reports whether the session may change anything: admin only.
func (s *session) canAct() bool { return s.scope == ScopeAdmin }

// csrfToken is the session's CSRF token: an HMAC of the session's own MAC
// under the session key, so it differs for every login and cannot be
// computed without the token's hash.
func (s *session) csrfToken() string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(csrfPurpose))
	m.Write(s.mac)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF reports, in constant time, whether got is the session's CSRF
// token.
func (s *session) checkCSRF(got string) bool {
	want := s.csrfToken()
	return hmac.Equal([]byte(got), []byte(want))
}

// sessionMAC is the MAC of one cookie's fields under key.
func sessionMAC(key []byte, name string, expiry int64, nonce string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(sessionPurpose))
	for _, f := range []string{name, strconv.FormatInt(expiry, 10), nonce} {
		m.Write([]byte{0})
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}

// newSessionValue returns the cookie value of a new session of token name
// signed with key, expiring at expiry: base64url(name).expiry.nonce.mac.
// base64url has no '.', so the four fields split back unambiguously.
func newSessionValue(key []byte, name string, expiry time.Time) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	nonce := base64.RawURLEncoding.EncodeToString(b)
	exp := expiry.Unix()
	mac := sessionMAC(key, name, exp, nonce)
	return strings.Join([]string{base64.RawURLEncoding.EncodeToString([]byte(name)), strconv.FormatInt(exp, 10), nonce,
		base64.RawURLEncoding.EncodeToString(mac)}, ".")
}

// maxCookieLen bounds what is parsed: a real cookie is about 150 bytes.
const maxCookieLen = 512

// readSession returns the session r's cookie holds, or false if it has
// none, or one malformed, expired, expiring further out than lifetime
// (made with another configuration), of a token that no longer exists, or
// whose MAC does not match.
func (h *Handler) readSession(r *http.Request) (*session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > maxCookieLen {
		return nil, false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 {
		return nil, false
	}
	nameBytes, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return nil, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return nil, false
	}
	now := h.now()
	expiry := time.Unix(exp, 0)
	if !now.Before(expiry) || expiry.After(now.Add(h.lifetime()+time.Minute)) {
		return nil, false
	}
	name := string(nameBytes)
	key, scope, ok := h.sessionKey(name)
	if !ok {
		return nil, false
	}
	if !hmac.Equal(mac, sessionMAC(key, name, exp, parts[2])) {
		return nil, false
	}
	return &session{name: name, scope: scope, expiry: expiry, mac: mac, key: key}, true
}

// sessionKey returns the key sessions of token name are signed with and
// the token's scope now, or false if there is no such token.
func (h *Handler) sessionKey(name string) ([]byte, string, bool) {
	if !h.authEnabled() {
		if name != anonymousName {
			return nil, "", false
		}
		return h.anonKey, ScopeAdmin, true
	}
	if name == anonymousName {
		return nil, "", false
	}
	key, tok, ok := h.cfg.Tokens.SessionKey(name)
	if !ok {
		return nil, "", false
	}
	return key, tok.Scope, true
}

// secureRequest reports whether the browser reached us over TLS: this
// server's own TLS or a trusted proxy's (servedOverHTTPS), or an https
// Origin on the login form's POST (a TLS proxy in front). A Secure cookie
// set on a plain-http page would never come back, so the flag follows what
// the browser used.
func secureRequest(r *http.Request) bool {
	if servedOverHTTPS(r) {
		return true
	}
	return strings.HasPrefix(strings.ToLower(r.Header.Get("Origin")), "https://")
}

// setSessionCookie sets the session cookie: HttpOnly (no script reads
// it), SameSite=Strict (no other site's page sends it), Path=/ui/, Secure
// over TLS, and expiring with the session.
func setSessionCookie(w http.ResponseWriter, r *http.Request, value string, expiry, now time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/ui/", Expires: expiry,
		MaxAge: int(expiry.Sub(now).Seconds()), HttpOnly: true, Secure: secureRequest(r), SameSite: http.SameSiteStrictMode,
	})
}

// clearSessionCookie removes the session cookie.
func clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/ui/", MaxAge: -1,
		HttpOnly: true, Secure: secureRequest(r), SameSite: http.SameSiteStrictMode,
	})
}
