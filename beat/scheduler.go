// Package beat is the cron beat: it asks the API to dispatch due cron
// slots (POST /api/triggers/cron/dispatch) at each trigger's exact next
// slot, timed by robfig/cron v3, and every Interval as a safety net. The
// dispatch itself is idempotent in the database, so the beat only decides
// when to ask; a leadership (tasks/leadership, "beat") keeps a second beat
// quiet while the first is alive. The timers follow the trigger list,
// reloaded when the change feed says a workflow changed and every
// ReloadInterval in case a change was not heard.
package beat

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/orcheo/orcheo/tasks/leadership"
)

// Defaults for zero Config fields.
const (
	IntervalDefault       = 60 * time.Second
	ReloadIntervalDefault = 10 * time.Second
	retryMin              = 500 * time.Millisecond
	retryMax              = 30 * time.Second

	// changeReloadDelay is how long a reload waits after the change that
	// asked for it, so that a burst of changes (a trigger set, then its
	// workflow's version) costs one reload.
	changeReloadDelay = 20 * time.Millisecond
	// changeReloadGap bounds the reloads changes cause: at most one per
	// gap, whatever the rate of changes to workflows, since every change
	// of any workflow is heard, not only of its cron trigger.
	changeReloadGap = 250 * time.Millisecond
)

// API is what the beat needs of orcheo: implemented by client.Client over
// HTTP, and in orcheo dev by the store and dispatcher directly.
type API interface {
	orcheo.CronDispatcher
	FindCronTriggers(ctx context.Context) ([]*orcheo.CronTrigger, error)
}

// Config configures a Scheduler.
type Config struct {
	API API
	// Scheduler computes each trigger's next slot; it must parse
	// expressions as the API does (same ORCHEO_CRON_SECONDS).
	Scheduler orcheo.CronScheduler
	// Interval is the safety-net dispatch period (CRON_DISPATCH_INTERVAL).
	Interval time.Duration
	// ReloadInterval is how often the trigger list is fetched to reset the
	// timers (ORCHEO_CRON_RELOAD_INTERVAL); with Changes it is only the
	// fallback for a change the feed lost.
	ReloadInterval time.Duration
	// Changes, if set, is the workflow change feed the API publishes on
	// when a trigger is set or deleted (and on every other change of a
	// workflow): the beat reloads its triggers soon after each change and
	// on each (re)connection, when changes may have been missed, so a new
	// or changed trigger's first slot fires on time. nil: only the
	// periodic reload.
	Changes orcheo.ChangeFeed
	// Elector, if set, must lead for the beat to dispatch; nil means
	// always active (a single beat, orcheo dev). The caller starts it
	// before Start and stops it (which resigns) after Stop.
	Elector *leadership.Elector
	Logger  logrus.FieldLogger
}

// Status is what the beat's health endpoint reports.
type Status struct {
	Active         bool       `json:"active"`
	Triggers       int        `json:"triggers"`
	Dispatches     int64      `json:"dispatches"`
	LastDispatchAt *time.Time `json:"last_dispatch_at,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
}

// Scheduler is the beat service. Start launches it; Stop stops the timers,
// finishes the dispatch in flight and stops listening to the elector.
type Scheduler struct {
	startstop.BaseStartStop
	cfg Config

	wake       chan struct{} // buffered 1: dispatch requests coalesce
	active     atomic.Bool
	dispatches atomic.Int64

	mu       sync.Mutex // guards the fields below
	status   Status
	entries  []cron.EntryID
	loadedFP string
}

// New returns a beat with defaults filled in. It panics if API or
// Scheduler is missing: that is a wiring bug.
func New(cfg Config) *Scheduler {
	if cfg.API == nil || cfg.Scheduler == nil {
		panic("beat: Config.API and Config.Scheduler are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = IntervalDefault
	}
	if cfg.ReloadInterval <= 0 {
		cfg.ReloadInterval = ReloadIntervalDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.StandardLogger()
	}
	return &Scheduler{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Status returns a snapshot for the health endpoint.
func (s *Scheduler) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Active = s.active.Load()
	st.Dispatches = s.dispatches.Load()
	return st
}

// Start launches the beat. It dispatches once at once (catching up on what
// was missed while no beat ran), then at every slot and every Interval.
func (s *Scheduler) Start(ctx context.Context) {
	ctx, shouldStart, stopped := s.StartInit(ctx)
	if !shouldStart {
		return
	}
	c := cron.New(cron.WithLocation(time.UTC))
	c.Schedule(cron.Every(s.cfg.Interval), cron.FuncJob(s.requestDispatch))
	c.Start()
	var changes <-chan orcheo.ChangeEvent
	if s.cfg.Changes != nil {
		changes = s.cfg.Changes.Subscribe(ctx) // ends with ctx
	}
	var sub *leadership.Subscription
	if s.cfg.Elector == nil {
		s.active.Store(true)
	} else {
		sub = s.cfg.Elector.Listen()
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.dispatchLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		s.controlLoop(ctx, c, sub, changes)
	}()
	go func() {
		defer stopped()
		wg.Wait()
		<-c.Stop().Done()
		if sub != nil {
			sub.Unlisten()
			s.active.Store(false)
		}
		s.cfg.Logger.Info("beat stopped")
	}()
	s.requestDispatch()
}

// requestDispatch asks the dispatch loop for one more dispatch; requests
// made while one is pending merge into it. Cron jobs call it, so it must
// not block.
func (s *Scheduler) requestDispatch() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// controlLoop follows the leadership (sub; nil without an elector) and
// keeps the per-trigger timers current: it reloads them every
// ReloadInterval and, through changes (nil without a feed), soon after a
// workflow changed or the feed (re)connected.
func (s *Scheduler) controlLoop(ctx context.Context, c *cron.Cron, sub *leadership.Subscription, changes <-chan orcheo.ChangeEvent) {
	s.reload(ctx, c)
	lastReload := time.Now()
	var roles <-chan leadership.Notification
	if sub != nil {
		roles = sub.C()
	}
	reload := time.NewTicker(s.cfg.ReloadInterval)
	defer reload.Stop()
	// soon fires the reload a change asked for; nil while none is asked.
	var soon <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-roles:
			s.setActive(n.IsLeader)
		case ev, ok := <-changes:
			if !ok {
				changes = nil // ctx is done
				continue
			}
			if ev.Kind == orcheo.ChangeDisconnected {
				// Changes are not heard until it is back; the periodic
				// reload covers the gap, and the reconnection reloads.
				continue
			}
			if soon == nil {
				// ChangeWorkflow, or ChangeConnected: what changed while
				// the feed was down is unknown, so reload either way.
				soon = time.After(max(changeReloadDelay, time.Until(lastReload.Add(changeReloadGap))))
			}
		case <-soon:
			soon = nil
			s.reload(ctx, c)
			lastReload = time.Now()
		case <-reload.C:
			s.reload(ctx, c)
			lastReload = time.Now()
		}
	}
}

// setActive records a change of role. A beat that becomes active
// dispatches at once, catching up on what the previous leader missed.
// Dispatching while another beat still believes it leads is harmless (the
// dispatch is idempotent); the leadership only saves the duplicate calls.
func (s *Scheduler) setActive(active bool) {
	if was := s.active.Swap(active); was == active {
		return
	}
	if active {
		s.cfg.Logger.Info("beat is active")
		s.requestDispatch()
	} else {
		s.cfg.Logger.Info("beat is standby")
	}
}

// slotSchedule is a robfig/cron Schedule whose times are the trigger's
// slots, computed by the same code as the API's dispatch.
type slotSchedule struct {
	sched   orcheo.CronScheduler
	trigger *orcheo.CronTrigger
}

func (s slotSchedule) Next(t time.Time) time.Time {
	next, err := s.sched.NextCronSlot(s.trigger, t)
	if err != nil {
		return time.Time{}
	}
	return next
}

// fingerprint identifies a trigger list's schedules: when it is unchanged
// the timers are kept.
func fingerprint(list []*orcheo.CronTrigger) string {
	parts := make([]string, 0, len(list))
	for _, t := range list {
		parts = append(parts, fmt.Sprintf("%s|%s|%s|%s|%v|%v", t.WorkflowID, t.UpdatedAt.Format(time.RFC3339Nano),
			t.Expression, t.Timezone, t.StartAt, t.EndAt))
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

// reload fetches the triggers and, if they changed, replaces the timers.
func (s *Scheduler) reload(ctx context.Context, c *cron.Cron) {
	list, err := s.cfg.API.FindCronTriggers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.WithError(err).Warn("load cron triggers; keeping the current timers")
		}
		return
	}
	fp := fingerprint(list)
	s.mu.Lock()
	defer s.mu.Unlock()
	if fp == s.loadedFP {
		return
	}
	for _, id := range s.entries {
		c.Remove(id)
	}
	s.entries = s.entries[:0]
	for _, t := range list {
		s.entries = append(s.entries, c.Schedule(slotSchedule{sched: s.cfg.Scheduler, trigger: t}, cron.FuncJob(s.requestDispatch)))
	}
	s.loadedFP = fp
	s.status.Triggers = len(list)
	s.cfg.Logger.WithField("triggers", len(list)).Info("cron triggers loaded")
	// A changed schedule may already be due (catch-up); ask now.
	s.requestDispatch()
}

// dispatchLoop performs the requested dispatches one at a time.
func (s *Scheduler) dispatchLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		if !s.active.Load() {
			continue
		}
		s.dispatch(ctx)
	}
}

// dispatch calls the API until it answers, backing off exponentially while
// it is down. An answer of 4xx is not retried: asking again cannot help.
func (s *Scheduler) dispatch(ctx context.Context) {
	wait := retryMin
	for attempt := 1; ; attempt++ {
		start := time.Now()
		res, err := s.cfg.API.DispatchCron(ctx, nil)
		if err == nil {
			s.dispatches.Add(1)
			now := time.Now().UTC()
			s.mu.Lock()
			s.status.LastDispatchAt, s.status.LastError = &now, ""
			s.mu.Unlock()
			log := s.cfg.Logger.WithFields(logrus.Fields{"runs": len(res.Runs), "duration": time.Since(start).String()})
			if len(res.Runs) > 0 {
				log.Info("cron dispatched")
			} else {
				log.Debug("cron dispatched")
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.status.LastError = err.Error()
		s.mu.Unlock()
		switch orcheo.ErrorCode(err) {
		case orcheo.EINVALID, orcheo.EUNAUTHORIZED, orcheo.EFORBIDDEN, orcheo.ENOTFOUND:
			s.cfg.Logger.WithError(err).Error("cron dispatch refused")
			return
		}
		s.cfg.Logger.WithError(err).WithFields(logrus.Fields{"attempt": attempt, "retry_in": wait.String()}).Warn("cron dispatch failed; retrying")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, retryMax)
	}
}
