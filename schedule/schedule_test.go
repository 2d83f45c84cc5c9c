package schedule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/schedule"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ptr(t time.Time) *time.Time { return &t }

func format(ts []time.Time) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Format(time.RFC3339)
	}
	return strings.Join(out, " ")
}

// TestNext lists slots in time zones, across DST changes and within windows.
func TestNext(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		trigger orcheo.CronTrigger
		after   string
		want    string // the next slots, space-separated, in the trigger's zone
	}{
		"UTC every 5 min": {orcheo.CronTrigger{Expression: "*/5 * * * *"}, "2025-01-01T10:03:00Z",
			"2025-01-01T10:05:00Z 2025-01-01T10:10:00Z 2025-01-01T10:15:00Z"},
		"Descriptor hourly": {orcheo.CronTrigger{Expression: "@hourly"}, "2025-01-01T10:00:00Z",
			"2025-01-01T11:00:00Z 2025-01-01T12:00:00Z"},
		"Zone Paris 09:00": {orcheo.CronTrigger{Expression: "0 9 * * *", Timezone: "Europe/Paris"}, "2025-01-01T00:00:00Z",
			"2025-01-01T09:00:00+01:00 2025-01-02T09:00:00+01:00"},
		"Zone Kolkata half hour offset": {orcheo.CronTrigger{Expression: "0 0 * * *", Timezone: "Asia/Kolkata"}, "2025-01-01T00:00:00Z",
			"2025-01-02T00:00:00+05:30 2025-01-03T00:00:00+05:30"},
		// 2025-03-09 02:00 EST jumps to 03:00 EDT: 02:30 does not exist,
		// and that day has no slot.
		"DST gap daily 02:30 is skipped": {orcheo.CronTrigger{Expression: "30 2 * * *", Timezone: "America/New_York"}, "2025-03-08T12:00:00-05:00",
			"2025-03-10T02:30:00-04:00 2025-03-11T02:30:00-04:00"},
		"DST gap hourly": {orcheo.CronTrigger{Expression: "0 * * * *", Timezone: "America/New_York"}, "2025-03-09T00:30:00-05:00",
			"2025-03-09T01:00:00-05:00 2025-03-09T03:00:00-04:00 2025-03-09T04:00:00-04:00"},
		// 2025-11-02 02:00 EDT falls back to 01:00 EST: 01:30 happens twice;
		// a daily schedule fires at the first only.
		"DST overlap daily 01:30 fires once": {orcheo.CronTrigger{Expression: "30 1 * * *", Timezone: "America/New_York"}, "2025-11-01T12:00:00-04:00",
			"2025-11-02T01:30:00-04:00 2025-11-03T01:30:00-05:00"},
		"DST overlap hourly fires in both hours": {orcheo.CronTrigger{Expression: "30 * * * *", Timezone: "America/New_York"}, "2025-11-02T00:45:00-04:00",
			"2025-11-02T01:30:00-04:00 2025-11-02T01:30:00-05:00 2025-11-02T02:30:00-05:00"},
		"DST overlap Europe 02:15": {orcheo.CronTrigger{Expression: "15 2 * * *", Timezone: "Europe/Berlin"}, "2025-10-25T12:00:00+02:00",
			"2025-10-26T02:15:00+02:00 2025-10-27T02:15:00+01:00"},
		"Start window inclusive": {orcheo.CronTrigger{Expression: "0 * * * *", StartAt: ptr(mustTime(t, "2025-01-01T12:00:00Z"))}, "2025-01-01T00:00:00Z",
			"2025-01-01T12:00:00Z 2025-01-01T13:00:00Z"},
		"End window inclusive": {orcheo.CronTrigger{Expression: "0 * * * *", EndAt: ptr(mustTime(t, "2025-01-01T02:00:00Z"))}, "2025-01-01T00:00:00Z",
			"2025-01-01T01:00:00Z 2025-01-01T02:00:00Z"},
	} {
		t.Run(name, func(t *testing.T) {
			tr := tc.trigger
			s, err := schedule.Compile(&tr, false)
			if err != nil {
				t.Fatal(err)
			}
			var got []time.Time
			after := mustTime(t, tc.after)
			for range len(strings.Fields(tc.want)) + 1 {
				next := s.Next(after)
				if next.IsZero() {
					break
				}
				got = append(got, next)
				after = next
			}
			want := tc.want
			if tr.EndAt == nil {
				got = got[:len(strings.Fields(want))]
			}
			if format(got) != want {
				t.Fatalf("slots = %s\nwant    %s", format(got), want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	start := mustTime(t, "2025-01-02T00:00:00Z")
	for name, tc := range map[string]struct {
		trigger orcheo.CronTrigger
		seconds bool
		field   string
	}{
		"Empty":           {orcheo.CronTrigger{}, false, "expression:"},
		"Garbage":         {orcheo.CronTrigger{Expression: "every day"}, false, "expression:"},
		"Range":           {orcheo.CronTrigger{Expression: "61 * * * *"}, false, "expression:"},
		"SecondsOff":      {orcheo.CronTrigger{Expression: "*/5 * * * * *"}, false, "ORCHEO_CRON_SECONDS"},
		"Every":           {orcheo.CronTrigger{Expression: "@every 5m"}, false, "@every"},
		"ZonePrefix":      {orcheo.CronTrigger{Expression: "CRON_TZ=Europe/Paris 0 9 * * *"}, false, "timezone field"},
		"Zone":            {orcheo.CronTrigger{Expression: "0 9 * * *", Timezone: "Mars/Olympus"}, false, "timezone:"},
		"Local":           {orcheo.CronTrigger{Expression: "0 9 * * *", Timezone: "Local"}, false, "timezone:"},
		"Window":          {orcheo.CronTrigger{Expression: "0 9 * * *", StartAt: &start, EndAt: &start}, false, "end_at:"},
		"Catchup":         {orcheo.CronTrigger{Expression: "0 9 * * *", Catchup: "some"}, false, "catchup:"},
		"CatchupLimit":    {orcheo.CronTrigger{Expression: "0 9 * * *", Catchup: orcheo.CatchupAll, CatchupLimit: 5000}, false, "catchup_limit:"},
		"LimitWithoutAll": {orcheo.CronTrigger{Expression: "0 9 * * *", CatchupLimit: 3}, false, "catchup_limit:"},
	} {
		t.Run(name, func(t *testing.T) {
			tr := tc.trigger
			_, err := schedule.Compile(&tr, tc.seconds)
			if orcheo.ErrorCode(err) != orcheo.EINVALID || !strings.Contains(orcheo.ErrorMessage(err), tc.field) {
				t.Fatalf("Compile = %v, want EINVALID mentioning %q", err, tc.field)
			}
		})
	}
	tr := orcheo.CronTrigger{Expression: "*/5 * * * * *"}
	s, err := schedule.Compile(&tr, true)
	if err != nil {
		t.Fatalf("seconds allowed: %v", err)
	}
	if got := s.Next(mustTime(t, "2025-01-01T00:00:01Z")); !got.Equal(mustTime(t, "2025-01-01T00:00:05Z")) {
		t.Fatalf("seconds slot = %s", got)
	}
	if tr.Timezone != "UTC" || tr.Catchup != orcheo.CatchupNone {
		t.Fatalf("defaults not filled: %+v", tr)
	}
}

// TestPlan covers the catch-up policies: a trigger every 10 minutes whose
// last handled slot was 10:00, dispatched at 11:01 with a 2-minute grace.
// 10:10 … 10:50 are missed, 11:00 is on time.
func TestPlan(t *testing.T) {
	t.Parallel()
	tr := orcheo.CronTrigger{Expression: "*/10 * * * *"}
	s, err := schedule.Compile(&tr, false)
	if err != nil {
		t.Fatal(err)
	}
	cursor := mustTime(t, "2025-01-01T10:00:00Z")
	for name, tc := range map[string]struct {
		now     string
		policy  orcheo.CatchupPolicy
		limit   int
		fire    string
		dropped int
		cursor  string
	}{
		"None":             {"2025-01-01T11:01:00Z", orcheo.CatchupNone, 0, "2025-01-01T11:00:00Z", 5, "2025-01-01T11:00:00Z"},
		"Latest":           {"2025-01-01T11:01:00Z", orcheo.CatchupLatest, 0, "2025-01-01T11:00:00Z", 5, "2025-01-01T11:00:00Z"},
		"All":              {"2025-01-01T11:01:00Z", orcheo.CatchupAll, 0, "2025-01-01T10:10:00Z 2025-01-01T10:20:00Z 2025-01-01T10:30:00Z 2025-01-01T10:40:00Z 2025-01-01T10:50:00Z 2025-01-01T11:00:00Z", 0, "2025-01-01T11:00:00Z"},
		"AllBounded":       {"2025-01-01T11:01:00Z", orcheo.CatchupAll, 2, "2025-01-01T10:40:00Z 2025-01-01T10:50:00Z 2025-01-01T11:00:00Z", 3, "2025-01-01T11:00:00Z"},
		"NoneAllLate":      {"2025-01-01T11:05:00Z", orcheo.CatchupNone, 0, "", 6, "2025-01-01T11:00:00Z"},
		"LatestAllLate":    {"2025-01-01T11:05:00Z", orcheo.CatchupLatest, 0, "2025-01-01T11:00:00Z", 5, "2025-01-01T11:00:00Z"},
		"OnTime":           {"2025-01-01T10:10:30Z", orcheo.CatchupNone, 0, "2025-01-01T10:10:00Z", 0, "2025-01-01T10:10:00Z"},
		"NothingDue":       {"2025-01-01T10:09:59Z", orcheo.CatchupAll, 0, "", 0, ""},
		"SlotAtNowIsDue":   {"2025-01-01T10:10:00Z", orcheo.CatchupNone, 0, "2025-01-01T10:10:00Z", 0, "2025-01-01T10:10:00Z"},
		"CursorIsExcluded": {"2025-01-01T10:00:00Z", orcheo.CatchupAll, 0, "", 0, ""},
	} {
		t.Run(name, func(t *testing.T) {
			p := s.Plan(cursor, mustTime(t, tc.now), tc.policy, tc.limit, 2*time.Minute)
			cur := ""
			if !p.Cursor.IsZero() {
				cur = p.Cursor.Format(time.RFC3339)
			}
			if format(p.Fire) != tc.fire || p.Dropped != tc.dropped || cur != tc.cursor {
				t.Fatalf("plan = fire [%s] dropped %d cursor %q\nwant   fire [%s] dropped %d cursor %q",
					format(p.Fire), p.Dropped, cur, tc.fire, tc.dropped, tc.cursor)
			}
		})
	}
}

// TestPlanLookback checks that a trigger idle for a year only considers the
// last MaxLookback, so one dispatch does bounded work.
func TestPlanLookback(t *testing.T) {
	t.Parallel()
	tr := orcheo.CronTrigger{Expression: "0 0 * * *"}
	s, err := schedule.Compile(&tr, false)
	if err != nil {
		t.Fatal(err)
	}
	now := mustTime(t, "2026-01-01T00:00:30Z")
	p := s.Plan(mustTime(t, "2025-01-01T00:00:00Z"), now, orcheo.CatchupAll, orcheo.CatchupLimitMax, time.Minute)
	if len(p.Fire) != 31 || !p.Fire[30].Equal(mustTime(t, "2026-01-01T00:00:00Z")) {
		t.Fatalf("fired %d slots, last %v", len(p.Fire), p.Fire[len(p.Fire)-1])
	}
}

func TestScheduler(t *testing.T) {
	t.Parallel()
	var s orcheo.CronScheduler = schedule.Scheduler{}
	tr := &orcheo.CronTrigger{Expression: "0 9 * * 1-5", Timezone: "Europe/Paris"}
	if err := s.CheckCronTrigger(tr); err != nil {
		t.Fatal(err)
	}
	// Friday 2025-01-03 10:00 Paris → Monday 09:00.
	next, err := s.NextCronSlot(tr, mustTime(t, "2025-01-03T10:00:00+01:00"))
	if err != nil || !next.Equal(mustTime(t, "2025-01-06T09:00:00+01:00")) {
		t.Fatalf("next = %v, %v", next, err)
	}
	if _, err := s.NextCronSlot(&orcheo.CronTrigger{Expression: "nope"}, time.Now()); orcheo.ErrorCode(err) != orcheo.EINVALID {
		t.Fatalf("bad expression: %v", err)
	}
}
