package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/orcheo/orcheo"
)

// Scope is what a bearer token may call. requiredScopes decides which
// scopes may make each request; ScopeAdmin may make every one.
type Scope string

const (
	// ScopeAdmin may call everything.
	ScopeAdmin Scope = "admin"
	// ScopeRead may call the GET (and HEAD) routes under /api/, not
	// /metrics.
	ScopeRead Scope = "read"
	// ScopeDispatch may call what orcheo beat calls: POST
	// /api/triggers/cron/dispatch, and GET /api/triggers/cron, the list it
	// sets its timers from.
	ScopeDispatch Scope = "dispatch"
	// ScopeMetrics may call GET /metrics only: Prometheus's token.
	ScopeMetrics Scope = "metrics"
)

// Scopes lists every scope, in the order the documentation gives them.
var Scopes = []Scope{ScopeAdmin, ScopeRead, ScopeDispatch, ScopeMetrics}

// Valid reports whether sc is one of Scopes.
func (sc Scope) Valid() bool { return slices.Contains(Scopes, sc) }

// Who may make a request, as requiredScopes answers: nil is anyone, with
// or without a token.
var (
	adminOnly   = []Scope{ScopeAdmin}
	readers     = []Scope{ScopeAdmin, ScopeRead}
	cronReaders = []Scope{ScopeAdmin, ScopeRead, ScopeDispatch}
	dispatchers = []Scope{ScopeAdmin, ScopeDispatch}
	scrapers    = []Scope{ScopeAdmin, ScopeMetrics}
)

// requiredScopes is the one place that decides who may call what: the
// scopes whose tokens may make a request with this method and escaped
// path, admin first, or nil for a request that needs no token. It looks at
// the escaped path, which is what the router matches (see isWebhookPath),
// and at nothing else, so it decides for unknown paths too (an unknown
// /api/ path needs a token, and then answers 404).
//
//   - /healthz, /readyz and every path outside /api/ and /metrics: public.
//   - The webhook route, /api/workflows/{ref}/triggers/webhook, any method:
//     public; third parties call it and it checks its own credentials.
//   - GET and HEAD /metrics: metrics.
//   - POST /api/triggers/cron/dispatch: dispatch.
//   - GET and HEAD /api/triggers/cron: read and dispatch (the beat's list).
//   - Every other GET and HEAD under /api/: read.
//   - Everything else under /api/ or on /metrics: admin only.
func requiredScopes(method, path string) []Scope {
	get := method == http.MethodGet || method == http.MethodHead
	switch {
	case path == "/metrics":
		if get {
			return scrapers
		}
		return adminOnly
	case !strings.HasPrefix(path, "/api/"), isWebhookPath(path):
		return nil
	case method == http.MethodPost && path == "/api/triggers/cron/dispatch":
		return dispatchers
	case get && path == "/api/triggers/cron":
		return cronReaders
	case get:
		return readers
	}
	return adminOnly
}

// scopesText is "admin", "admin or read", "admin, read or dispatch".
func scopesText(scopes []Scope) string {
	s := make([]string, len(scopes))
	for i, sc := range scopes {
		s[i] = string(sc)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// MinTokenLength is the shortest token value ORCHEO_API_TOKENS and the token
// file accept (cmd/orcheo checks it, naming the entry). NewTokens does not
// check it, so that a short legacy ORCHEO_API_TOKEN keeps working.
const MinTokenLength = 16

// DefaultTokenName names the one admin token of ORCHEO_API_TOKEN and of
// Server.Token.
const DefaultTokenName = "default"

// APIToken is one bearer token the API accepts. String and GoString show
// only its name and scope, so that logging one never logs its value.
type APIToken struct {
	Name  string
	Scope Scope
	Value string
}

// String returns "name (scope)", never the value.
func (t APIToken) String() string { return fmt.Sprintf("%s (%s)", t.Name, t.Scope) }

// GoString is String, so that %#v does not print the value either.
func (t APIToken) GoString() string { return t.String() }

// tokenName is what a token's name may be: it appears in logs and messages.
var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validTokenValue reports whether v can be sent in an Authorization header
// and read back unchanged: visible ASCII, no spaces.
func validTokenValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			return false
		}
	}
	return true
}

// Tokens is the set of bearer tokens the API accepts, each with a name and
// a scope. It keeps the SHA-256 of each value, not the value. Set replaces
// the whole set at once, so a request sees either the old tokens or the new
// ones, never a mix; Tokens is safe for concurrent use while the server
// serves. The zero value accepts no token.
type Tokens struct {
	set atomic.Pointer[tokenSet]
}

// tokenSet is one immutable set of tokens.
type tokenSet struct {
	entries []tokenEntry
}

type tokenEntry struct {
	name  string
	scope Scope
	sum   [sha256.Size]byte
}

// NewTokens returns Tokens holding list; see Set for what it refuses.
func NewTokens(list []APIToken) (*Tokens, error) {
	t := &Tokens{}
	if err := t.Set(list); err != nil {
		return nil, err
	}
	return t, nil
}

// Set replaces the tokens with list, or returns EINVALID and keeps the old
// ones if list is empty, or holds a name that is not 1–64 of
// A-Z a-z 0-9 . _ - (starting with a letter or digit), an unknown scope, an
// empty value or one with spaces or non-ASCII bytes, two tokens of one name
// or two of one value. Messages name tokens by name, never by value.
func (t *Tokens) Set(list []APIToken) error {
	if len(list) == 0 {
		return orcheo.Errorf(orcheo.EINVALID, "no API tokens")
	}
	set := &tokenSet{entries: make([]tokenEntry, 0, len(list))}
	names := map[string]bool{}
	sums := map[[sha256.Size]byte]string{}
	for i, tok := range list {
		if !tokenName.MatchString(tok.Name) {
			return orcheo.Errorf(orcheo.EINVALID, "API token %d: name %q: want 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit", i+1, tok.Name)
		}
		if !tok.Scope.Valid() {
			return orcheo.Errorf(orcheo.EINVALID, "API token %q: unknown scope %q: want %s", tok.Name, tok.Scope, scopesText(Scopes))
		}
		if !validTokenValue(tok.Value) {
			return orcheo.Errorf(orcheo.EINVALID, "API token %q: the value is empty or holds spaces or bytes that are not printable ASCII", tok.Name)
		}
		if names[tok.Name] {
			return orcheo.Errorf(orcheo.EINVALID, "two API tokens are named %q", tok.Name)
		}
		names[tok.Name] = true
		sum := sha256.Sum256([]byte(tok.Value))
		if other, ok := sums[sum]; ok {
			return orcheo.Errorf(orcheo.EINVALID, "API tokens %q and %q have the same value", other, tok.Name)
		}
		sums[sum] = tok.Name
		set.entries = append(set.entries, tokenEntry{name: tok.Name, scope: tok.Scope, sum: sum})
	}
	t.set.Store(set)
	return nil
}

// Names returns "name (scope)" for each token, sorted, for logs.
func (t *Tokens) Names() []string {
	set := t.set.Load()
	if set == nil {
		return nil
	}
	out := make([]string, 0, len(set.entries))
	for _, e := range set.entries {
		out = append(out, fmt.Sprintf("%s (%s)", e.name, e.scope))
	}
	sort.Strings(out)
	return out
}

// match returns the principal of the token whose value hashes to sum. It
// compares sum with every token in constant time and does not stop at a
// match, so the time taken tells neither whether nor which token matched.
func (t *Tokens) match(sum [sha256.Size]byte) (Principal, bool) {
	set := t.set.Load()
	if set == nil {
		return Principal{}, false
	}
	found := -1
	for i := range set.entries {
		eq := subtle.ConstantTimeCompare(sum[:], set.entries[i].sum[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return Principal{}, false
	}
	return Principal{TokenName: set.entries[found].name, Scope: set.entries[found].scope}, true
}

// Principal is who made a request: the name and scope of the token it
// carried. With authentication off (no token configured), a request to a
// protected route has the principal {"", ScopeAdmin}.
type Principal struct {
	TokenName string
	Scope     Scope
}

// NewContextWithPrincipal returns ctx carrying p.
func NewContextWithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFromContext returns the principal authenticate found for the
// request, and false for a request without a valid token.
func PrincipalFromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

// authEnabled reports whether any token is configured. Tokens set but
// empty still enables authentication: nothing then gets in.
func (s *Server) authEnabled() bool {
	return s.Token != "" || s.Tokens != nil
}

// principal returns the principal of r's bearer token, or EUNAUTHORIZED if
// r carries none or an unknown one. Every token is compared, Token too.
func (s *Server) principal(r *http.Request) (Principal, error) {
	auth := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return Principal{}, orcheo.Errorf(orcheo.EUNAUTHORIZED, "missing bearer token")
	}
	// Comparing hashes makes the time independent of the lengths.
	sum := sha256.Sum256([]byte(strings.TrimSpace(auth[len(prefix):])))
	var p Principal
	ok := false
	if s.Tokens != nil {
		p, ok = s.Tokens.match(sum)
	}
	if s.Token != "" {
		legacy := sha256.Sum256([]byte(s.Token))
		if subtle.ConstantTimeCompare(sum[:], legacy[:]) == 1 && !ok {
			p, ok = Principal{TokenName: DefaultTokenName, Scope: ScopeAdmin}, true
		}
	}
	if !ok {
		return Principal{}, orcheo.Errorf(orcheo.EUNAUTHORIZED, "invalid bearer token")
	}
	return p, nil
}

// authenticate lets a request through if it needs no token
// (requiredScopes), or carries a token of one of the scopes it needs:
// otherwise it answers 401 for a missing or unknown token and 403 for a
// known one without the scope. Authentication is off while no token is
// configured (orcheo dev on loopback only). A request let through with a
// valid token, on any route, or to a protected route while authentication
// is off, carries its Principal, which limitUnauthenticated and the request
// log read.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		need := requiredScopes(r.Method, r.URL.EscapedPath())
		if !s.authEnabled() {
			if need != nil {
				r = withPrincipal(r, Principal{Scope: ScopeAdmin})
			}
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.principal(r)
		if need == nil {
			// A webhook sent with a valid token counts as its holder's;
			// one sent with another Authorization (its own credentials)
			// is served as any other.
			if err == nil {
				r = withPrincipal(r, p)
			}
			next.ServeHTTP(w, r)
			return
		}
		if err != nil {
			Error(w, r, err)
			return
		}
		r = withPrincipal(r, p)
		if !slices.Contains(need, p.Scope) {
			Error(w, r, orcheo.Errorf(orcheo.EFORBIDDEN, "token %q has scope %s; %s %s needs scope %s", p.TokenName, p.Scope, r.Method, r.URL.Path, scopesText(need)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withPrincipal returns r carrying p, and names p's token in the request's
// log line.
func withPrincipal(r *http.Request, p Principal) *http.Request {
	if note, ok := r.Context().Value(noteKey).(*requestNote); ok {
		note.token = p.TokenName
	}
	return r.WithContext(NewContextWithPrincipal(r.Context(), p))
}
