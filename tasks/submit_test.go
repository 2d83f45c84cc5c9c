package tasks

import (
	"context"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/submit"
)

// startSubmitter returns a started run submitter storing in runs and
// publishing on q, stopped when the test ends.
func startSubmitter(tb testing.TB, runs orcheo.RunService, q orcheo.RunQueue) *submit.Submitter {
	tb.Helper()
	s := submit.New(submit.Config{Runs: runs, Queue: q, Logger: testLogger()})
	s.Start(context.Background())
	tb.Cleanup(s.Stop)
	return s
}
