package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// pprofAddr checks ORCHEO_PPROF_ADDR: empty (the default) serves nothing,
// and anything else must be a loopback host:port, since the profiles show
// the process's internals to whoever can connect.
func pprofAddr(v string, errs *[]string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	host, _, err := net.SplitHostPort(v)
	ip := net.ParseIP(host)
	if err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		*errs = append(*errs, fmt.Sprintf("ORCHEO_PPROF_ADDR=%q: want a loopback address such as 127.0.0.1:6060", v))
		return ""
	}
	return v
}

// servePprof serves net/http/pprof's handlers on addr, a listener of its
// own apart from the API and the metrics, and returns the function that
// closes it. It is a debugging aid: a busy port is logged, not fatal.
func servePprof(addr string, log logrus.FieldLogger) func() {
	if addr == "" {
		return func() {}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.WithError(err).Error("pprof: cannot listen; profiles are not served")
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or a trace takes as long as asked.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("pprof server")
		}
	}()
	log.WithField("addr", ln.Addr().String()).Warn("pprof listening: profiles of this process are served without a token")
	return func() { _ = srv.Close() }
}
