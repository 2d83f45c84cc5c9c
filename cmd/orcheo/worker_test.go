package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/tasks"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// TestUntilUp covers the worker's wait at start for its database or Redis.
func TestUntilUp(t *testing.T) {
	t.Parallel()
	refused := &refusedError{}
	t.Run("RetriesOutagesUntilUp", func(t *testing.T) {
		t.Parallel()
		log, hook := logtest.NewNullLogger()
		tries := 0
		err := untilUp(context.Background(), log, "the database", func(context.Context) error {
			if tries++; tries < 3 {
				return fmt.Errorf("connect: %w", refused)
			}
			return nil
		})
		if err != nil || tries != 3 {
			t.Fatalf("untilUp = %v after %d tries, want nil after 3", err, tries)
		}
		if n := len(hook.AllEntries()); n != 2 {
			t.Fatalf("%d log lines, want one per failed try (2)", n)
		}
		e := hook.AllEntries()[1]
		if e.Level != logrus.WarnLevel || e.Message != "waiting for the database" || e.Data["retry_in"] != "1s" {
			t.Fatalf("second line = %s %q %v, want a warning with retry_in 1s (the backoff doubled)", e.Level, e.Message, e.Data)
		}
	})
	t.Run("ConfigErrorIsNotRetried", func(t *testing.T) {
		t.Parallel()
		log, _ := logtest.NewNullLogger()
		bad := orcheo.Errorf(orcheo.EINVALID, "redis url: bad")
		tries := 0
		err := untilUp(context.Background(), log, "redis", func(context.Context) error { tries++; return bad })
		if !errors.Is(err, bad) || tries != 1 {
			t.Fatalf("untilUp = %v after %d tries, want the error after 1", err, tries)
		}
	})
	t.Run("CancelEndsTheWait", func(t *testing.T) {
		t.Parallel()
		log, _ := logtest.NewNullLogger()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		err := untilUp(ctx, log, "redis", func(context.Context) error { return refused })
		if !errors.Is(err, context.Canceled) || time.Since(start) > 400*time.Millisecond {
			t.Fatalf("untilUp = %v after %s, want context.Canceled at once", err, time.Since(start))
		}
	})
}

// refusedError is a net.Error, as a refused dial is.
type refusedError struct{}

func (*refusedError) Error() string   { return "connection refused" }
func (*refusedError) Timeout() bool   { return false }
func (*refusedError) Temporary() bool { return false }

// TestIsOutage checks what the real clients return when nothing listens:
// an outage, to wait out; and that a bad configuration is not one.
func TestIsOutage(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port := testenv.FreePort(t)
	_, pgErr := db.Open(ctx, fmt.Sprintf("postgres://orcheo@127.0.0.1:%d/orcheo?sslmode=disable", port))
	q, err := tasks.NewQueue(tasks.Config{RedisURL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}, nil, logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	redisErr := q.Ping(ctx)
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"PostgresDown", pgErr, true},
		{"RedisDown", redisErr, true},
		{"EOF", fmt.Errorf("read: %w", io.EOF), true},
		{"Invalid", orcheo.Errorf(orcheo.EINVALID, "bad url"), false},
		{"Other", errors.New("password authentication failed"), false},
	} {
		if tc.err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		if got := isOutage(tc.err); got != tc.want {
			t.Errorf("%s: isOutage(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
