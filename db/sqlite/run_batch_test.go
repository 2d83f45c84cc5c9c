package sqlite_test

import (
	"testing"

	"github.com/orcheo/orcheo/db/storetest"
)

// BenchmarkClaimComplete compares claiming and completing runs one at a
// time from 10 goroutines with batches of 10 (ClaimRuns, CompleteRuns).
func BenchmarkClaimComplete(b *testing.B) {
	b.Run("PerRun", func(b *testing.B) { storetest.BenchmarkClaimComplete(b, openStore(b), false) })
	b.Run("Batched", func(b *testing.B) { storetest.BenchmarkClaimComplete(b, openStore(b), true) })
}
