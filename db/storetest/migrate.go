package storetest

import (
	"context"
	"testing"

	"github.com/orcheo/orcheo/db"
)

func exerciseMigrate(t *testing.T, backend Backend) {
	ctx := context.Background()

	t.Run("Idempotent", func(t *testing.T) {
		t.Parallel()
		dsn := backend.FreshDSN(t)
		for i := range 3 {
			if err := db.Migrate(ctx, dsn); err != nil {
				t.Fatalf("migrate #%d: %v", i+1, err)
			}
		}
		s, err := db.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		wf, _ := MustWorkflow(t, s)
		MustRun(t, s, wf)
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		dsn := backend.FreshDSN(t)
		const n = 5
		start := make(chan struct{})
		errs := make(chan error, n)
		for range n {
			go func() {
				<-start
				errs <- db.Migrate(ctx, dsn)
			}()
		}
		close(start)
		for range n {
			if err := <-errs; err != nil {
				t.Fatalf("concurrent migrate: %v", err)
			}
		}
		s, err := db.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wf, _ := MustWorkflow(t, s)
		MustRun(t, s, wf)
	})
}
