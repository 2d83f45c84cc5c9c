package tasks

import (
	"context"
	"strconv"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
)

func itoa(n int) string { return strconv.Itoa(n) }

// TestMiniredis_EndToEnd runs one run through an in-process miniredis, as
// `orcheo dev` does.
func TestMiniredis_EndToEnd(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	store := openStore(t, db.BackendSQLite, "")
	f := newFixture(t, store, "redis://"+mr.Addr()+"/0")
	f.start(t)
	run := f.createRun(t, okDefinition, `{"n":5}`)
	if err := f.queue.EnqueueRun(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	got := f.waitTerminal(t, run.ID)
	if got.Status != orcheo.RunSucceeded || got.Attempt != 1 || len(got.Steps) != 1 {
		t.Fatalf("run = status %s attempt %d steps %d (error %q), want succeeded, 1, 1", got.Status, got.Attempt, len(got.Steps), got.Error)
	}
	if err := f.queue.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	f.worker.Stop()
}
