package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/orcheo/orcheo"
)

func exerciseTriggers(t *testing.T, backend Backend) {
	ctx := context.Background()

	t.Run("Webhook", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		cfg, err := s.Triggers.FindWebhookConfig(ctx, wf.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Enabled || len(cfg.Methods) != 0 {
			t.Fatalf("default config = %+v, want disabled zero config", cfg)
		}
		if err := s.Triggers.SetWebhookConfig(ctx, wf.ID, &orcheo.WebhookConfig{Enabled: true, Methods: []string{"post", "Put"}}); err != nil {
			t.Fatal(err)
		}
		cfg, err = s.Triggers.FindWebhookConfig(ctx, wf.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.Enabled || !slices.Equal(cfg.Methods, []string{"POST", "PUT"}) {
			t.Fatalf("stored config = %+v", cfg)
		}
		if err := s.Triggers.SetWebhookConfig(ctx, wf.ID, &orcheo.WebhookConfig{Enabled: false}); err != nil {
			t.Fatal(err)
		}
		cfg, err = s.Triggers.FindWebhookConfig(ctx, wf.ID)
		if err != nil || cfg.Enabled || len(cfg.Methods) != 0 {
			t.Fatalf("replaced config = %+v (%v)", cfg, err)
		}
	})

	t.Run("ErrWebhook", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		err := s.Triggers.SetWebhookConfig(ctx, wf.ID, &orcheo.WebhookConfig{Methods: []string{"TRACE"}})
		wantCode(t, err, orcheo.EINVALID)
		err = s.Triggers.SetWebhookConfig(ctx, wf.ID, nil)
		wantCode(t, err, orcheo.EINVALID)
		missing := orcheo.NewID()
		err = s.Triggers.SetWebhookConfig(ctx, missing, &orcheo.WebhookConfig{Enabled: true})
		wantCode(t, err, orcheo.ENOTFOUND)
		wantMessageContains(t, err, missing)
		cfg, err := s.Triggers.FindWebhookConfig(ctx, missing)
		if err != nil || cfg.Enabled {
			t.Fatalf("config of a missing workflow = %+v (%v), want disabled", cfg, err)
		}
	})
}
