package ui

import (
	"fmt"
	"testing"
	"time"
)

// TestLoginLimiter_FullTableLetsNewAddressesIn: a guesser holding every
// slot of the table (many addresses, each at its limit) must not lock out
// an address with no failures of its own; that address's failures are
// still counted, by evicting the window that started earliest, and the
// per-address bound holds for everyone still in the table.
func TestLoginLimiter_FullTableLetsNewAddressesIn(t *testing.T) {
	l := newLoginLimiter()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	guesser := func(i int) string { return fmt.Sprintf("2001:db8:%x::/64", i) }
	for i := range loginClientsMax {
		for range loginFailuresMax {
			l.failed(guesser(i), t0.Add(time.Duration(i)*time.Microsecond))
		}
	}
	now := t0.Add(time.Second)
	if _, ok := l.allowed(guesser(1), now); ok {
		t.Fatal("a guesser at its limit may sign in")
	}

	const user = "203.0.113.7"
	if _, ok := l.allowed(user, now); !ok {
		t.Fatal("a full table refuses an address that never failed")
	}
	l.failed(user, now)
	if _, ok := l.allowed(user, now); !ok {
		t.Fatal("one failure refused the address")
	}
	for range loginFailuresMax - 1 {
		l.failed(user, now)
	}
	if _, ok := l.allowed(user, now); ok {
		t.Fatal("an address that came into a full table is not bounded")
	}
	if _, ok := l.allowed(guesser(0), now); !ok {
		t.Fatal("the earliest window was not the one evicted")
	}
	if _, ok := l.allowed(guesser(1), now); ok {
		t.Fatal("a guesser other than the earliest was evicted")
	}
	if len(l.clients) > loginClientsMax || len(l.order) > loginClientsMax+1 {
		t.Fatalf("table holds %d windows (order %d), bound %d", len(l.clients), len(l.order), loginClientsMax)
	}

	// Once the windows end, everyone starts afresh and the table drains.
	later := now.Add(loginFailuresWindow)
	if _, ok := l.allowed(guesser(1), later); !ok {
		t.Fatal("a guesser is still refused after its window")
	}
	l.failed("198.51.100.1", later)
	if len(l.clients) != 1 || len(l.order) != 1 {
		t.Fatalf("after the windows ended: %d windows, order %d; want only the new one", len(l.clients), len(l.order))
	}
}

// TestLoginLimiter_ClockBack: after the clock went back, a window that
// "started" in the future blocks the front of the eviction order; the
// windows ended and replaced behind it cannot grow the order past its
// bound.
func TestLoginLimiter_ClockBack(t *testing.T) {
	l := newLoginLimiter()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.failed("192.0.2.1", t0.Add(10000*time.Hour))
	for i := range 3 * loginClientsMax {
		l.failed("192.0.2.2", t0.Add(time.Duration(i)*loginFailuresWindow))
	}
	if len(l.order) > 2*loginClientsMax || len(l.clients) != 2 {
		t.Fatalf("order %d, windows %d", len(l.order), len(l.clients))
	}
	if _, ok := l.allowed("192.0.2.2", t0.Add(time.Duration(3*loginClientsMax-1)*loginFailuresWindow)); !ok {
		t.Fatal("one failure refused the address")
	}
}
