// Package schedule is the cron maths of orcheo: it parses trigger
// expressions with robfig/cron v3, lists a trigger's slots in its time zone
// and start/end window, applies the catch-up policy, and dispatches due slots
// as runs (Dispatcher). It depends on the root package only; the API server
// and the beat reach it through orcheo.CronScheduler and orcheo.CronDispatcher.
//
// Daylight saving time, as docs/cron.md documents it:
//   - a wall-clock time that does not exist (02:30 on a spring-forward day in
//     America/New_York) has no slot that day: robfig/cron skips it;
//   - a wall-clock time that happens twice (01:30 on a fall-back day) fires
//     once, at its first occurrence, unless the hour field matches every hour
//     (an hourly schedule fires in both hours, which are an hour apart).
package schedule

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/orcheo/orcheo"
)

// MaxLookback bounds how far back a dispatch looks for missed slots: a
// trigger that nothing dispatched for longer only considers the last
// MaxLookback, which bounds the work of one dispatch.
const MaxLookback = 31 * 24 * time.Hour

// GraceDefault is how late a slot may be dispatched and still count as on
// time rather than missed.
const GraceDefault = 2 * time.Minute

var (
	standardParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	secondsParser  = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
)

// Schedule is one trigger's compiled schedule. It is immutable and safe for
// concurrent use.
type Schedule struct {
	spec       cron.Schedule
	loc        *time.Location
	start, end *time.Time
	everyHour  bool // the hour field matches every hour: repeated wall-clock hours fire twice
}

// Compile validates t (t.Validate and the expression) and returns its
// schedule. seconds allows an optional leading seconds field, a test and
// development option (ORCHEO_CRON_SECONDS). Errors are EINVALID and name the
// field.
func Compile(t *orcheo.CronTrigger, seconds bool) (*Schedule, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	loc, err := t.Location()
	if err != nil {
		return nil, err
	}
	spec, err := Parse(t.Expression, seconds)
	if err != nil {
		return nil, err
	}
	s := &Schedule{spec: spec, loc: loc, start: t.StartAt, end: t.EndAt, everyHour: true}
	if ss, ok := spec.(*cron.SpecSchedule); ok {
		const allHours = 1<<24 - 1
		s.everyHour = ss.Hour&allHours == allHours
	}
	return s, nil
}

// Parse parses a cron expression: five fields or a descriptor (@yearly,
// @monthly, @weekly, @daily, @midnight, @hourly), plus an optional leading
// seconds field when seconds is set. Time zone prefixes and @every are
// refused: the zone is the trigger's own field, and @every counts from
// whenever it was parsed instead of naming wall-clock slots.
func Parse(expr string, seconds bool) (cron.Schedule, error) {
	expr = strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, orcheo.Errorf(orcheo.EINVALID, "expression: put the time zone in the timezone field, not in the expression")
	case strings.HasPrefix(expr, "@every"):
		return nil, orcheo.Errorf(orcheo.EINVALID, "expression: @every is not supported; use a calendar expression such as \"*/5 * * * *\"")
	}
	p := standardParser
	if seconds {
		p = secondsParser
	} else if !strings.HasPrefix(expr, "@") && len(strings.Fields(expr)) == 6 {
		return nil, orcheo.Errorf(orcheo.EINVALID, "expression: a seconds field is only allowed with ORCHEO_CRON_SECONDS=true (tests and development)")
	}
	spec, err := p.Parse(expr)
	if err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "expression: %q: %v", expr, err)
	}
	return spec, nil
}

// Location returns the schedule's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// Next returns the first slot strictly after `after` within the window, or
// the zero time if there is none.
func (s *Schedule) Next(after time.Time) time.Time {
	if s.start != nil && after.Before(*s.start) {
		// A slot at start_at exactly fires: start just before it.
		after = s.start.Add(-time.Nanosecond)
	}
	t := after.In(s.loc)
	for i := 0; i < 1000; i++ {
		t = s.spec.Next(t)
		if t.IsZero() || (s.end != nil && t.After(*s.end)) {
			return time.Time{}
		}
		if !s.everyHour && repeatedWallClock(t) {
			continue
		}
		return t
	}
	return time.Time{}
}

// repeatedWallClock reports whether t's wall-clock time already happened
// earlier the same night, at a larger UTC offset: the second 01:30 of a
// fall-back night.
func repeatedWallClock(t time.Time) bool {
	_, off := t.Zone()
	_, offBefore := t.Add(-3 * time.Hour).Zone()
	if offBefore <= off {
		return false
	}
	earlier := t.Add(-time.Duration(offBefore-off) * time.Second)
	if _, o := earlier.Zone(); o != offBefore {
		return false
	}
	y1, m1, d1 := t.Date()
	y2, m2, d2 := earlier.Date()
	return y1 == y2 && m1 == m2 && d1 == d2 && t.Hour() == earlier.Hour() &&
		t.Minute() == earlier.Minute() && t.Second() == earlier.Second()
}

// Plan is what one dispatch does with one trigger.
type Plan struct {
	// Fire lists the slots to fire, oldest first.
	Fire []time.Time
	// Dropped counts due slots that will never fire (catch-up policy).
	Dropped int
	// Cursor is the newest due slot (fired or dropped), to record as
	// dispatched; zero if no slot was due.
	Cursor time.Time
}

// Plan returns what a dispatch at now does with the slots after cursor (the
// newest slot already handled, or when the config was set). A slot at most
// grace before now is on time and fires. Older slots were missed, and the
// policy decides: none drops them; latest fires the newest due slot even if
// it is late; all fires the newest limit missed slots.
func (s *Schedule) Plan(cursor, now time.Time, policy orcheo.CatchupPolicy, limit int, grace time.Duration) Plan {
	if floor := now.Add(-MaxLookback); cursor.Before(floor) {
		cursor = floor
	}
	if limit <= 0 {
		limit = orcheo.CatchupLimitDefault
	}
	var (
		p      Plan
		missed []time.Time // ring of the newest missed slots
		onTime []time.Time
		keep   = 1
	)
	if policy == orcheo.CatchupAll {
		keep = limit
	}
	for t := s.Next(cursor); !t.IsZero() && !t.After(now); t = s.Next(t) {
		p.Cursor = t
		if now.Sub(t) <= grace {
			onTime = append(onTime, t)
			continue
		}
		missed = append(missed, t)
		if len(missed) > keep {
			missed = missed[1:]
			p.Dropped++
		}
	}
	switch policy {
	case orcheo.CatchupAll:
		p.Fire = append(p.Fire, missed...)
	case orcheo.CatchupLatest:
		if len(onTime) == 0 && len(missed) > 0 {
			p.Fire = append(p.Fire, missed[len(missed)-1])
			p.Dropped += len(missed) - 1
		} else {
			p.Dropped += len(missed)
		}
	default:
		p.Dropped += len(missed)
	}
	p.Fire = append(p.Fire, onTime...)
	return p
}

// Scheduler implements orcheo.CronScheduler.
type Scheduler struct {
	// Seconds allows a leading seconds field (ORCHEO_CRON_SECONDS).
	Seconds bool
}

var _ orcheo.CronScheduler = Scheduler{}

// CheckCronTrigger validates t completely. Returns EINVALID naming the field.
func (s Scheduler) CheckCronTrigger(t *orcheo.CronTrigger) error {
	_, err := Compile(t, s.Seconds)
	return err
}

// NextCronSlot returns t's first slot after `after`, or the zero time.
func (s Scheduler) NextCronSlot(t *orcheo.CronTrigger, after time.Time) (time.Time, error) {
	sched, err := Compile(t, s.Seconds)
	if err != nil {
		return time.Time{}, err
	}
	return sched.Next(after), nil
}
