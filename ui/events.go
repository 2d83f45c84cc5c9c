package ui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/orcheo/orcheo"
)

// streamsPerSession is how many live streams one session keeps: a few
// tabs (the runs page and the runs an operator opened from it) all stay
// live; a newer stream past it replaces the session's oldest, so a page
// that reconnects in a loop cannot hold more.
const streamsPerSession = 4

// streams counts the live streams of this process, at most max, and at most
// streamsPerSession per session: one more of the same session replaces its
// oldest, which is told so and not reconnected by its page. Safe for
// concurrent use.
type streams struct {
	mu        sync.Mutex
	max       int
	live      int
	bySession map[string][]chan struct{} // oldest first
}

func newStreams(max int) *streams {
	return &streams{max: max, bySession: map[string][]chan struct{}{}}
}

// open registers a stream of session key; replaced is closed when a newer
// stream of the session takes its place. ok is false when the process
// already holds max streams.
func (s *streams) open(key string) (replaced chan struct{}, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mine := s.bySession[key]
	if len(mine) >= streamsPerSession {
		close(mine[0])
		mine = mine[1:]
		s.live--
	} else if s.live >= s.max {
		return nil, false
	}
	replaced = make(chan struct{})
	s.bySession[key] = append(mine, replaced)
	s.live++
	return replaced, true
}

// close unregisters the stream unless a newer one replaced it.
func (s *streams) close(key string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mine := s.bySession[key]
	for i, c := range mine {
		if c == ch {
			mine = append(mine[:i:i], mine[i+1:]...)
			s.live--
			break
		}
	}
	if len(mine) == 0 {
		delete(s.bySession, key)
	} else {
		s.bySession[key] = mine
	}
}

// SessionToken returns the token name of the session r carries, if it
// verifies now (readSession: signature, expiry, token still present), never
// merely a cookie. The server counts every other /ui/ request under its cap
// on unauthenticated requests; a signed-in request, a live stream above
// all, holds no slot however long it stays open, and its request log line
// names the token as an API call's does.
func (h *Handler) SessionToken(r *http.Request) (string, bool) {
	s, ok := h.readSession(r)
	if !ok {
		return "", false
	}
	return s.name, true
}

// streamRetryMillis is how long a page's EventSource waits before it
// reconnects a stream that ended.
const streamRetryMillis = 2000

// handleEvents is the live stream (Server-Sent Events) of the runs page
// (its filter in the query) or of one run (?run=id). It reads the store at
// most once per PollInterval and sends an event only when what the page
// shows changed: "rows" with the table's body, or "run" with the run's
// panels. It checks the session again at every read, so a revoked token's
// stream ends at once, and ends when the client goes, at StreamLifetime,
// at Shutdown, or when a newer stream of the session replaces it.
func (h *Handler) handleEvents(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	var poll func(ctx context.Context, s *session) (event string, payload any, err error)
	if id := q.Get("run"); id != "" {
		if !orcheo.IsID(id) {
			http.Error(w, "no such run", http.StatusNotFound)
			return
		}
		poll = func(ctx context.Context, s *session) (string, any, error) { return h.pollRun(ctx, id, s) }
	} else {
		rq, err := parseRunsQuery(q)
		if err != nil {
			http.Error(w, orcheo.ErrorMessage(err), http.StatusBadRequest)
			return
		}
		poll = func(ctx context.Context, s *session) (string, any, error) { return h.pollRuns(ctx, rq, s) }
	}
	key := string(s.mac)
	replaced, ok := h.streams.open(key)
	if !ok {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many live streams", http.StatusServiceUnavailable)
		return
	}
	defer h.streams.close(key, replaced)

	rc := http.NewResponseController(w)
	// The server's write timeout bounds a request's answer; a stream's
	// is its lifetime.
	_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.StreamLifetime + 10*time.Second))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: %d\n\n", streamRetryMillis)
	if rc.Flush() != nil {
		return
	}

	ctx := r.Context()
	end := time.NewTimer(h.cfg.StreamLifetime)
	defer end.Stop()
	tick := time.NewTicker(h.cfg.PollInterval)
	defer tick.Stop()
	lastSent := time.Now()
	var last [sha256.Size]byte
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-h.done:
				return
			case <-end.C:
				return
			case <-replaced:
				writeEvent(w, "replaced", map[string]string{})
				_ = rc.Flush()
				return
			case <-tick.C:
			}
		}
		cur, ok := h.readSession(r)
		if !ok {
			writeEvent(w, "signedout", map[string]string{})
			_ = rc.Flush()
			return
		}
		event, payload, err := poll(ctx, cur)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.cfg.Logger.WithError(err).Warn("live stream: read the store")
			continue
		}
		data, err := json.Marshal(payload)
		if err != nil {
			h.cfg.Logger.WithError(err).Error("live stream: encode")
			return
		}
		// The first read is sent too: the run may have changed between the
		// page's render and this stream's start (a retry's redirect lands
		// on a run that ends a few ms later), and a stream that took that
		// state as its baseline would never show it.
		if sum := sha256.Sum256(data); sum != last || first {
			last = sum
			writeEventData(w, event, data)
			if rc.Flush() != nil {
				return
			}
			lastSent = time.Now()
			continue
		}
		if time.Since(lastSent) >= h.cfg.HeartbeatInterval {
			fmt.Fprint(w, ": ping\n\n")
			if rc.Flush() != nil {
				return
			}
			lastSent = time.Now()
		}
	}
}

// writeEvent writes one event with payload as JSON.
func writeEvent(w http.ResponseWriter, event string, payload any) {
	data, _ := json.Marshal(payload)
	writeEventData(w, event, data)
}

// writeEventData writes one event. JSON holds no raw newline, so the data
// is one line.
func writeEventData(w http.ResponseWriter, event string, data []byte) {
	var buf bytes.Buffer
	buf.WriteString("event: " + event + "\ndata: ")
	buf.Write(bytes.ReplaceAll(data, []byte("\n"), []byte("\\n")))
	buf.WriteString("\n\n")
	_, _ = w.Write(buf.Bytes())
}

// rowsEvent is what the runs page's stream sends: the table body.
type rowsEvent struct {
	Rows  string `json:"rows"`
	Count string `json:"count"`
}

func (h *Handler) pollRuns(ctx context.Context, rq runsQuery, s *session) (string, any, error) {
	res, err := h.findRuns(ctx, rq)
	if err != nil {
		return "", nil, err
	}
	rows, err := h.fragment("rows", h.rows(ctx, res.Runs, s.canAct()))
	if err != nil {
		return "", nil, err
	}
	return "rows", rowsEvent{Rows: rows, Count: countText(rq, res)}, nil
}

// countText is the line under the runs table.
func countText(rq runsQuery, res *runsResult) string {
	switch {
	case len(res.Runs) == 0:
		return "No runs match."
	case res.More:
		return fmt.Sprintf("The %d newest runs that match%s; older ones on the next page.", len(res.Runs), pageText(rq))
	}
	return fmt.Sprintf("%d runs match%s.", len(res.Runs), pageText(rq))
}

func pageText(rq runsQuery) string {
	if rq.Before != "" {
		return " (after the previous page)"
	}
	return ""
}

// runEvent is what a run page's stream sends: its panels, re-rendered.
type runEvent struct {
	Summary  string `json:"summary"`
	Steps    string `json:"steps"`
	Actions  string `json:"actions"`
	Terminal bool   `json:"terminal"`
}

func (h *Handler) pollRun(ctx context.Context, id string, s *session) (string, any, error) {
	v, err := h.runView(ctx, id, s)
	if err != nil {
		return "", nil, err
	}
	var ev runEvent
	for name, dst := range map[string]*string{"summary": &ev.Summary, "steps": &ev.Steps, "actions": &ev.Actions} {
		html, err := h.fragment(name, v)
		if err != nil {
			return "", nil, err
		}
		*dst = strings.TrimSpace(html)
	}
	ev.Terminal = v.Run.Status.Terminal()
	return "run", ev, nil
}
