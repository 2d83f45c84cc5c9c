package ui

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/orcheo/orcheo"
)

// systemReadTimeout bounds each part of the system page, so a slow Redis
// or database shows as a message in its part, not a page that hangs.
const systemReadTimeout = 5 * time.Second

// systemQueuesMax bounds the queues whose depths the page reads.
const systemQueuesMax = 100

// systemView is the system page: each part, or why it is missing.
type systemView struct {
	Queues      []queueDepth
	QueuesError string

	Workers      []*orcheo.WorkerInfo
	WorkersError string

	Pending, Running int64
	OldestAge        string // how long the oldest due pending run has waited, "" for none
	OldestSince      string
	StatsError       string

	BeatLeader    string
	BeatError     string
	LastDispatch  string // the newest slot a dispatch handled, over every trigger
	NextSlot      string // the soonest next slot, over every trigger
	CronTriggers  int
	CronError     string
	LastDayChart  *barChart
	LastDayTotal  int64
	LastDayError  string
	LastDaySince  string
	LastDayUntil  string
	GeneratedTime string
}

type queueDepth struct {
	Name           string
	Ready, Delayed int64
}

// handleSystem is the system page: queue depths, workers online and what
// each runs, the oldest pending run's age, the beat and its last
// dispatch, and the runs of the last 24 hours by status.
func (h *Handler) handleSystem(w http.ResponseWriter, r *http.Request, s *session) {
	now := h.now()
	v := &systemView{GeneratedTime: formatTime(now)}
	h.systemWorkers(r.Context(), v)
	h.systemQueues(r.Context(), v)
	h.systemStats(r.Context(), v, now)
	h.systemBeat(r.Context(), v, now)
	h.systemLastDay(r.Context(), v, now)
	h.render(w, r, http.StatusOK, "system", s, "System", v)
}

func partContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, systemReadTimeout)
}

// partError logs err and returns the message a part shows instead.
func (h *Handler) partError(what string, err error) string {
	h.cfg.Logger.WithError(err).Warn("system page: " + what)
	if code := orcheo.ErrorCode(err); code != orcheo.EINTERNAL {
		return fmt.Sprintf("Could not read %s: %s", what, orcheo.ErrorMessage(err))
	}
	return fmt.Sprintf("Could not read %s; the error has been logged.", what)
}

func (h *Handler) systemWorkers(ctx context.Context, v *systemView) {
	if h.cfg.Workers == nil {
		v.WorkersError = "The worker registry is not available here."
		return
	}
	ctx, cancel := partContext(ctx)
	defer cancel()
	ws, err := h.cfg.Workers.Workers(ctx)
	if err != nil {
		v.WorkersError = h.partError("the workers", err)
		return
	}
	v.Workers = ws
}

// systemQueues reads the depth of every configured queue, every online
// worker's queue and every workflow's queue, each name checked as a queue
// name before it reaches Redis.
func (h *Handler) systemQueues(ctx context.Context, v *systemView) {
	if h.cfg.Queues == nil {
		v.QueuesError = "Queue depths are not available here."
		return
	}
	names := slices.Clone(h.cfg.QueueNames)
	for _, w := range v.Workers {
		names = append(names, w.Queues...)
	}
	for _, wf := range h.names.list(ctx, h) {
		if !wf.Archived() {
			names = append(names, wf.Queue)
		}
	}
	if len(names) == 0 {
		names = append(names, orcheo.DefaultQueue)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	ctx, cancel := partContext(ctx)
	defer cancel()
	for _, q := range names {
		if len(v.Queues) >= systemQueuesMax {
			break
		}
		if (&orcheo.Workflow{Handle: "q", Queue: q}).Validate() != nil {
			continue // a worker record's queue is never trusted as a key
		}
		ready, delayed, err := h.cfg.Queues.QueueDepth(ctx, q)
		if err != nil {
			v.QueuesError = h.partError("the queue depths", err)
			return
		}
		v.Queues = append(v.Queues, queueDepth{Name: q, Ready: ready, Delayed: delayed})
	}
}

func (h *Handler) systemStats(ctx context.Context, v *systemView, now time.Time) {
	if h.cfg.RunStats == nil {
		v.StatsError = "Run statistics are not available here."
		return
	}
	ctx, cancel := partContext(ctx)
	defer cancel()
	st, err := h.cfg.RunStats.RunStats(ctx, now)
	if err != nil {
		v.StatsError = h.partError("the run statistics", err)
		return
	}
	v.Pending, v.Running = st.Pending, st.Running
	if st.OldestDue != nil {
		v.OldestAge = duration(st.OldestDue, &now, now)
		v.OldestSince = formatTime(*st.OldestDue)
	}
}

// systemBeat reads who holds the beat's lease and, from the cron
// triggers, the newest slot a dispatch handled and the soonest next one.
func (h *Handler) systemBeat(ctx context.Context, v *systemView, now time.Time) {
	ctx, cancel := partContext(ctx)
	defer cancel()
	if h.cfg.BeatLeader == nil {
		v.BeatError = "The beat's lease is not visible here."
	} else if leader, err := h.cfg.BeatLeader(ctx); err != nil {
		v.BeatError = h.partError("the beat's lease", err)
	} else {
		v.BeatLeader = leader
	}
	if h.cfg.Cron == nil || h.cfg.CronScheduler == nil {
		v.CronError = "Cron triggers are not available here."
		return
	}
	ts, err := h.cfg.Cron.FindCronTriggers(ctx)
	if err != nil {
		v.CronError = h.partError("the cron triggers", err)
		return
	}
	v.CronTriggers = len(ts)
	var last, next time.Time
	for _, t := range ts {
		if t.LastDispatchedAt != nil && t.LastDispatchedAt.After(last) {
			last = *t.LastDispatchedAt
		}
		if n, err := h.cfg.CronScheduler.NextCronSlot(t, now); err == nil && !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	if !last.IsZero() {
		v.LastDispatch = formatTime(last)
	}
	if !next.IsZero() {
		v.NextSlot = formatTime(next)
	}
}

// chartStatuses are the statuses the chart shows, in the order of a run's
// life.
var chartStatuses = []orcheo.RunStatus{orcheo.RunPending, orcheo.RunRunning, orcheo.RunSucceeded,
	orcheo.RunFailed, orcheo.RunCancelled, orcheo.RunSkipped}

func (h *Handler) systemLastDay(ctx context.Context, v *systemView, now time.Time) {
	if h.cfg.RunCounts == nil {
		v.LastDayError = "Run counts are not available here."
		return
	}
	since := now.Add(-24 * time.Hour)
	v.LastDaySince, v.LastDayUntil = formatTime(since), formatTime(now)
	ctx, cancel := partContext(ctx)
	defer cancel()
	counts, err := h.cfg.RunCounts.CountRunsByStatus(ctx, since, now.Add(time.Millisecond))
	if err != nil {
		v.LastDayError = h.partError("the run counts", err)
		return
	}
	bars := make([]bar, 0, len(chartStatuses))
	for _, st := range chartStatuses {
		bars = append(bars, bar{Label: string(st), Value: counts[st], Class: "status-" + string(st)})
		v.LastDayTotal += counts[st]
	}
	v.LastDayChart = newBarChart(bars)
}

// Sizes of the bar chart, in SVG units.
const (
	chartW      = 560
	chartBarH   = 22
	chartGap    = 8
	chartLabelW = 90
	chartNumW   = 70
)

// barChart is a horizontal bar chart, one bar per label.
type barChart struct {
	Width, Height int
	BarX          int // where the bars start, after their labels
	Bars          []bar
}

type bar struct {
	Label string
	Value int64
	Class string
	// Y and W place the bar, LabelY its texts' baseline, NumX its count.
	Y, W, LabelY, NumX int
}

// newBarChart scales bars to the widest.
func newBarChart(bars []bar) *barChart {
	var top int64 = 1
	for _, b := range bars {
		top = max(top, b.Value)
	}
	span := chartW - chartLabelW - chartNumW
	c := &barChart{Width: chartW, Height: len(bars)*(chartBarH+chartGap) + chartGap, BarX: chartLabelW, Bars: bars}
	for i := range c.Bars {
		b := &c.Bars[i]
		b.Y = chartGap + i*(chartBarH+chartGap)
		b.LabelY = b.Y + chartBarH*2/3
		b.W = int(int64(span) * b.Value / top)
		if b.Value > 0 && b.W < 2 {
			b.W = 2
		}
		b.NumX = chartLabelW + b.W + 6
	}
	return c
}
