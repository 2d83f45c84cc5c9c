package postgres_test

import (
	"context"
	"testing"

	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/db/storetest"
	"github.com/orcheo/orcheo/internal/testenv"
)

// BenchmarkClaimComplete compares claiming and completing runs one at a
// time from 10 goroutines with batches of 10 (ClaimRuns, CompleteRuns).
func BenchmarkClaimComplete(b *testing.B) {
	s, err := db.Open(context.Background(), testenv.PostgresURL(b, "db_postgres_bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.Run("PerRun", func(b *testing.B) { storetest.BenchmarkClaimComplete(b, s, false) })
	b.Run("Batched", func(b *testing.B) { storetest.BenchmarkClaimComplete(b, s, true) })
}
