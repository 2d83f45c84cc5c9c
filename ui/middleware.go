package ui

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/orcheo/orcheo"
)

// contentSecurityPolicy allows scripts, styles and live streams from this
// origin only: no inline script or style, no framing, no form posting
// elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// setSecurityHeaders sets the headers every UI answer carries. Pages hold
// run data, so nothing is cached.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// pageFunc is a handler of a signed-in request.
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session)

// page serves f to a request with a valid session and sends any other to
// the login form, remembering where it was going. A live stream gets 401
// instead: EventSource cannot follow a redirect to a form.
func (h *Handler) page(f pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := h.readSession(r)
		if !ok {
			if r.URL.Path == "/ui/runs/events" {
				http.Error(w, "not signed in", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		f(w, r, s)
	})
}

// maxFormBytes bounds a form's body: the largest is the login form's.
const maxFormBytes = 16 << 10

// action serves f to a POST with a valid session, from this origin, with
// the session's CSRF token (form field csrf or header X-CSRF-Token), and,
// when admin is set, of an admin token: 403 otherwise (303 to the login
// form without a session). A read token's POST is refused here even though
// its pages show no buttons.
func (h *Handler) action(f pageFunc, admin bool) http.Handler {
	return h.actionSized(f, admin, maxFormBytes)
}

// actionSized is action with a body of at most limit bytes (the run-now
// form carries a run's input).
func (h *Handler) actionSized(f pageFunc, admin bool, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r) {
			h.renderError(w, r, nil, orcheo.Errorf(orcheo.EFORBIDDEN, "This request did not come from an orcheo page; go back and try again."))
			return
		}
		s, ok := h.readSession(r)
		if !ok {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if err := r.ParseForm(); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				h.renderError(w, r, s, orcheo.Errorf(orcheo.ETOOLARGE, "The form is larger than %d KiB.", limit>>10))
				return
			}
			h.renderError(w, r, s, orcheo.Errorf(orcheo.EINVALID, "The form could not be read."))
			return
		}
		token := r.PostForm.Get("csrf")
		if token == "" {
			token = r.Header.Get("X-CSRF-Token")
		}
		if !s.checkCSRF(token) {
			h.renderError(w, r, s, orcheo.Errorf(orcheo.EFORBIDDEN, "The form has expired or did not come from this session; reload the page and try again."))
			return
		}
		if admin && !s.canAct() {
			h.renderError(w, r, s, orcheo.Errorf(orcheo.EFORBIDDEN, "Token %q has scope %s, which can look but not act; sign in with an admin token.", s.name, s.scope))
			return
		}
		f(w, r, s)
	})
}

// servedOverHTTPS reports whether the browser reached us over https: this
// server's own TLS, or a TLS proxy in ORCHEO_HTTP_TRUSTED_PROXIES that says
// so in X-Forwarded-Proto (the server marks the request; from any other
// peer the header counts for nothing).
func servedOverHTTPS(r *http.Request) bool {
	return r.TLS != nil || orcheo.ForwardedHTTPS(r.Context())
}

// sameOrigin reports whether a POST came from a page of this origin: the
// browser's Sec-Fetch-Site, when sent, says same-origin, and the Origin
// (or, without one, the Referer) names this host, over https when this
// server speaks TLS or a trusted proxy says it served https. Otherwise a
// plain-http server accepts an https origin of its own host too: a TLS
// proxy in front. "null" origins (sandboxed frames, some redirects) and
// requests naming neither are refused.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" {
		return false
	}
	u, err := url.Parse(src)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return true
	case "http":
		return !servedOverHTTPS(r)
	}
	return false
}

// localPath returns next if it is a path of the UI (where a login may send
// the browser on), else the runs page: never another site.
func localPath(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/ui/") ||
		strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(u.Path, "/ui/login") ||
		strings.HasPrefix(u.Path, "/ui/runs/events") {
		return "/ui/runs"
	}
	if path.Clean(u.Path) != u.Path && path.Clean(u.Path)+"/" != u.Path {
		return "/ui/runs" // "." or ".." segments, which http.Redirect would resolve
	}
	return u.RequestURI()
}
