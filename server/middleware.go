package server

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

type contextKey int

const (
	loggerKey contextKey = iota
	// principalKey holds the Principal authenticate let a request through
	// as (auth.go).
	principalKey
	// noteKey holds the *requestNote of logRequests.
	noteKey
)

// isAuthenticated reports whether authenticate let r through with a valid
// token (or, with authentication off, to a protected route).
func isAuthenticated(r *http.Request) bool {
	_, ok := PrincipalFromContext(r.Context())
	return ok
}

// requestNote is what inner middleware tells logRequests about a request:
// the name (never the value) of its token.
type requestNote struct {
	token string
}

// loggerFrom returns the request's logger, set by the logging middleware.
func loggerFrom(r *http.Request) logrus.FieldLogger {
	if l, ok := r.Context().Value(loggerKey).(logrus.FieldLogger); ok {
		return l
	}
	return logrus.StandardLogger()
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs one line per request: method, path, status, duration
// and, for a request with a valid token, the token's name (field token). It
// never logs bodies, query strings or headers, which may carry secrets.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		logger := s.Logger
		note := &requestNote{}
		ctx := context.WithValue(r.Context(), loggerKey, logger)
		r = r.WithContext(context.WithValue(ctx, noteKey, note))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		fields := logrus.Fields{
			"method":      r.Method,
			"path":        r.URL.Path,
			"status":      sw.status,
			"duration_ms": float64(time.Since(start).Microseconds()) / 1000,
		}
		if note.token != "" {
			fields["token"] = note.token
		}
		logger.WithFields(fields).Info("request")
	})
}

// recoverPanics turns a handler panic into a logged 500, so one bad request
// cannot take the API down. http.ErrAbortHandler keeps its meaning.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			loggerFrom(r).WithField("stack", string(debug.Stack())).Errorf("panic: %v", v)
			if sw.status == 0 {
				Error(sw, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// limitBody caps every request body at MaxBodyBytes: a declared
// Content-Length above it is refused at once with 413 (counted as a webhook
// refusal, too_large, on the webhook route), and a body that grows past it
// fails the read, which the JSON and webhook readers turn into 413.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := s.maxBodyBytes()
		if r.ContentLength > limit {
			if isWebhookPath(r.URL.EscapedPath()) {
				s.countWebhookRefusal("too_large")
			}
			Error(w, r, orcheo.Errorf(orcheo.ETOOLARGE, "request body is larger than %d bytes", limit))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		next.ServeHTTP(w, r)
	})
}

// retryAfterSeconds is the Retry-After of an answer refused by the cap on
// unauthenticated requests.
const retryAfterSeconds = "5"

// limitUnauthenticated caps the unauthenticated requests served at once
// (MaxUnauthenticated, and MaxUnauthenticatedPerIP per client address): a
// slow sender holds its slot only until ReadTimeout, and a flood of them
// cannot take every goroutine, file and database connection from the token
// holder. Over a cap it answers 503 with Retry-After and closes the
// connection, without reading the body. /healthz and /readyz are never
// refused, so a flood does not make probes restart or unlist the API.
func (s *Server) limitUnauthenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAuthenticated(r) || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		client := orcheo.ClientKey(r.RemoteAddr)
		switch s.public.acquire(client, s.MaxUnauthenticated, s.MaxUnauthenticatedPerIP) {
		case capGlobal:
			s.refuse(w, r, "too many unauthenticated requests in progress; retry in a few seconds")
			return
		case capPerIP:
			s.refuse(w, r, "too many unauthenticated requests in progress from this address; retry in a few seconds")
			return
		}
		defer s.public.release(client)
		next.ServeHTTP(w, r)
	})
}

// refuse answers a request over the cap.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, message string) {
	w.Header().Set("Retry-After", retryAfterSeconds)
	// net/http would read up to 256 KiB of an unread body after the answer,
	// for as long as the client trickles it; a read deadline already passed
	// makes it close the connection instead. (Unsupported only by test
	// recorders.)
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	Error(w, r, orcheo.Errorf(orcheo.EUNAVAILABLE, "%s", message))
}

// capResult is what inFlight.acquire decided.
type capResult int

const (
	capOK capResult = iota
	capGlobal
	capPerIP
)

// inFlight counts the requests holding a slot, in all and per client. Safe
// for concurrent use.
type inFlight struct {
	mu       sync.Mutex
	total    int
	byClient map[string]int
}

// acquire takes a slot for client unless that would pass max in all or
// perClient for client (a cap of zero or less is off).
func (f *inFlight) acquire(client string, max, perClient int) capResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	if max > 0 && f.total >= max {
		return capGlobal
	}
	if perClient > 0 && f.byClient[client] >= perClient {
		return capPerIP
	}
	if f.byClient == nil {
		f.byClient = map[string]int{}
	}
	f.total++
	f.byClient[client]++
	return capOK
}

// release returns a slot acquire gave client.
func (f *inFlight) release(client string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total--
	if f.byClient[client]--; f.byClient[client] <= 0 {
		delete(f.byClient, client)
	}
}

// isWebhookPath reports whether the escaped path is
// /api/workflows/{ref}/triggers/webhook exactly (not its /config
// sub-resource, which needs the token). It must look at the same (escaped)
// path the router matches, or an encoded ref could pass as the webhook route
// while the router sends the request to a management route.
func isWebhookPath(path string) bool {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	return len(parts) == 5 && parts[0] == "api" && parts[1] == "workflows" && parts[2] != "" &&
		parts[3] == "triggers" && parts[4] == "webhook"
}
