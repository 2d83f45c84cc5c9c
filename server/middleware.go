package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

type contextKey int

const loggerKey contextKey = iota

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

// logRequests logs one line per request: method, path, status and duration.
// It never logs bodies, query strings or headers, which may carry secrets.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		logger := s.Logger
		r = r.WithContext(context.WithValue(r.Context(), loggerKey, logger))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		logger.WithFields(logrus.Fields{
			"method":      r.Method,
			"path":        r.URL.Path,
			"status":      sw.status,
			"duration_ms": float64(time.Since(start).Microseconds()) / 1000,
		}).Info("request")
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
// Content-Length above it is refused at once with 413, and a body that grows
// past it fails the read, which the JSON and webhook readers turn into 413.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := s.maxBodyBytes()
		if r.ContentLength > limit {
			Error(w, r, orcheo.Errorf(orcheo.ETOOLARGE, "request body is larger than %d bytes", limit))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate requires "Authorization: Bearer <Token>" on /api/* and
// /metrics except the webhook route, which third parties call and which verifies its own
// credentials. The token is compared in constant time. An empty Token
// disables authentication (orcheo dev on loopback only).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protected := strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics"
		if s.Token == "" || !protected || isWebhookPath(r.URL.EscapedPath()) {
			next.ServeHTTP(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		const prefix = "bearer "
		if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
			Error(w, r, orcheo.Errorf(orcheo.EUNAUTHORIZED, "missing bearer token"))
			return
		}
		// Hashing first makes the comparison independent of the lengths.
		got := sha256.Sum256([]byte(strings.TrimSpace(auth[len(prefix):])))
		want := sha256.Sum256([]byte(s.Token))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			Error(w, r, orcheo.Errorf(orcheo.EUNAUTHORIZED, "invalid bearer token"))
			return
		}
		next.ServeHTTP(w, r)
	})
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
