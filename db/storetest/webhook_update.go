package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// webhookUpdaters is how many UpdateWebhookConfig calls run at once.
const webhookUpdaters = 16

// exerciseWebhookUpdate: UpdateWebhookConfig is a read-modify-write no
// concurrent update can interleave with, so none is lost, the first one of
// a workflow included; fn's error writes nothing.
func exerciseWebhookUpdate(t *testing.T, backend Backend) {
	ctx := context.Background()

	// addKeep returns an fn that appends name to Keep; the pause between
	// the read and the write widens the window a store without the
	// atomicity would lose updates in.
	addKeep := func(name string) func(*orcheo.WebhookConfig) (*orcheo.WebhookConfig, error) {
		return func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error) {
			next := *stored
			next.Keep = append(slices.Clone(stored.Keep), name)
			time.Sleep(2 * time.Millisecond)
			return &next, nil
		}
	}
	// updateAtOnce runs webhookUpdaters updates of wf's config together,
	// each adding its own name to Keep, and returns the names.
	updateAtOnce := func(t *testing.T, update func(name string) error) []string {
		t.Helper()
		names := make([]string, webhookUpdaters)
		errs := make([]error, webhookUpdaters)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range names {
			names[i] = fmt.Sprintf("x-updater-%02d", i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = update(names[i])
			}()
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		return names
	}
	wantKeep := func(t *testing.T, got *orcheo.WebhookConfig, want ...string) {
		t.Helper()
		keep := slices.Sorted(slices.Values(got.Keep))
		if !slices.Equal(keep, want) {
			t.Fatalf("keep = %v, want %v: an update was lost", keep, want)
		}
	}

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		if err := s.Triggers.SetWebhookConfig(ctx, wf.ID, &orcheo.WebhookConfig{Enabled: true, Keep: []string{"x-first"}}); err != nil {
			t.Fatal(err)
		}
		names := updateAtOnce(t, func(name string) error {
			_, err := s.Triggers.UpdateWebhookConfig(ctx, wf.ID, addKeep(name))
			return err
		})
		got, err := s.Triggers.FindWebhookConfig(ctx, wf.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantKeep(t, got, append([]string{"x-first"}, names...)...)
		if !got.Enabled {
			t.Fatalf("the updates lost what they did not change: %+v", got)
		}
	})

	// The first config of a workflow: no row to lock yet.
	t.Run("ConcurrentFirst", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		names := updateAtOnce(t, func(name string) error {
			_, err := s.Triggers.UpdateWebhookConfig(ctx, wf.ID, addKeep(name))
			return err
		})
		got, err := s.Triggers.FindWebhookConfig(ctx, wf.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantKeep(t, got, names...)
	})

	t.Run("Result", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		var seen *orcheo.WebhookConfig
		got, err := s.Triggers.UpdateWebhookConfig(ctx, wf.ID, func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error) {
			seen = stored
			return &orcheo.WebhookConfig{Enabled: true, Methods: []string{"put"}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if seen == nil || seen.Enabled || len(seen.Methods) != 0 || seen.Verify != nil {
			t.Fatalf("fn saw %+v, want the disabled zero config", seen)
		}
		if !got.Enabled || !slices.Equal(got.Methods, []string{"PUT"}) {
			t.Fatalf("returned %+v, want it validated as stored", got)
		}
		if stored, err := s.Triggers.FindWebhookConfig(ctx, wf.ID); err != nil || !stored.Enabled || !slices.Equal(stored.Methods, []string{"PUT"}) {
			t.Fatalf("stored %+v (%v)", stored, err)
		}
	})

	// fn's error, and a result the store refuses, write nothing: neither
	// over a stored config nor as a workflow's first one.
	t.Run("ErrWritesNothing", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		set, _ := MustWorkflow(t, s)
		unset, _ := MustWorkflow(t, s)
		if err := s.Triggers.SetWebhookConfig(ctx, set.ID, &orcheo.WebhookConfig{Enabled: true}); err != nil {
			t.Fatal(err)
		}
		errRefused := errors.New("refused by fn")
		for _, wf := range []*orcheo.Workflow{set, unset} {
			_, err := s.Triggers.UpdateWebhookConfig(ctx, wf.ID, func(*orcheo.WebhookConfig) (*orcheo.WebhookConfig, error) {
				return &orcheo.WebhookConfig{Methods: []string{"DELETE"}}, errRefused
			})
			if err != errRefused {
				t.Fatalf("error %v, want fn's as fn returned it", err)
			}
			_, err = s.Triggers.UpdateWebhookConfig(ctx, wf.ID, func(*orcheo.WebhookConfig) (*orcheo.WebhookConfig, error) {
				return &orcheo.WebhookConfig{Verify: &orcheo.WebhookVerify{Type: orcheo.VerifyGitHub, Secret: "plaintext"}}, nil
			})
			wantCode(t, err, orcheo.EINVALID)
			_, err = s.Triggers.UpdateWebhookConfig(ctx, wf.ID, func(*orcheo.WebhookConfig) (*orcheo.WebhookConfig, error) {
				return nil, nil
			})
			wantCode(t, err, orcheo.EINVALID)
		}
		if cfg, err := s.Triggers.FindWebhookConfig(ctx, set.ID); err != nil || !cfg.Enabled || len(cfg.Methods) != 0 || cfg.Verify != nil {
			t.Fatalf("stored config after refused updates: %+v (%v)", cfg, err)
		}
		triggers, err := s.Triggers.FindWebhookTriggers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range triggers {
			if tr.WorkflowID == unset.ID {
				t.Fatalf("refused first updates stored a config: %+v", tr.Config)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		for _, ref := range []string{orcheo.NewID(), "not-an-id"} {
			called := false
			_, err := s.Triggers.UpdateWebhookConfig(ctx, ref, func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error) {
				called = true
				return stored, nil
			})
			wantCode(t, err, orcheo.ENOTFOUND)
			if called {
				t.Fatalf("fn ran for the missing workflow %q", ref)
			}
		}
	})
}
