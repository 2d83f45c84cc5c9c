package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

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
		// Plaintext secrets never reach the table.
		for _, v := range []*orcheo.WebhookVerify{
			{Type: orcheo.VerifyGitHub, Secret: "plaintext"},
			{Type: orcheo.VerifyGitHub, SealedSecret: "v1:c2VhbGVk", PreviousSecret: "plaintext"},
		} {
			err = s.Triggers.SetWebhookConfig(ctx, wf.ID, &orcheo.WebhookConfig{Enabled: true, Verify: v})
			wantCode(t, err, orcheo.EINVALID)
			if strings.Contains(err.Error(), "plaintext") {
				t.Fatalf("error %q holds the secret", err)
			}
		}
		missing := orcheo.NewID()
		err = s.Triggers.SetWebhookConfig(ctx, missing, &orcheo.WebhookConfig{Enabled: true})
		wantCode(t, err, orcheo.ENOTFOUND)
		wantMessageContains(t, err, missing)
		cfg, err := s.Triggers.FindWebhookConfig(ctx, missing)
		if err != nil || cfg.Enabled {
			t.Fatalf("config of a missing workflow = %+v (%v), want disabled", cfg, err)
		}
	})

	// FindWebhookTriggers lists every stored config, secrets sealed as
	// stored, with its workflow; a workflow without a config is absent.
	t.Run("FindWebhookTriggers", func(t *testing.T) {
		t.Parallel()
		s := openFresh(t, backend)
		if got, err := s.Triggers.FindWebhookTriggers(ctx); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v (%v)", got, err)
		}
		a, _ := MustWorkflow(t, s)
		b, _ := MustWorkflow(t, s)
		MustWorkflow(t, s) // no config
		at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
		sealed := &orcheo.WebhookConfig{Enabled: true, Verify: &orcheo.WebhookVerify{
			Type: orcheo.VerifyGitHub, SealedSecret: "v1:c2VhbGVk", SealedPreviousSecret: "v1:cHJldmlvdXM=", SecretSetAt: &at,
		}}
		if err := s.Triggers.SetWebhookConfig(ctx, a.ID, sealed); err != nil {
			t.Fatal(err)
		}
		if err := s.Triggers.SetWebhookConfig(ctx, b.ID, &orcheo.WebhookConfig{Methods: []string{"put"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Workflows.ArchiveWorkflow(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		got, err := s.Triggers.FindWebhookTriggers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []*orcheo.Workflow{a, b}
		slices.SortFunc(want, func(x, y *orcheo.Workflow) int { return strings.Compare(x.ID, y.ID) })
		if len(got) != 2 || got[0].WorkflowID != want[0].ID || got[1].WorkflowID != want[1].ID {
			t.Fatalf("triggers %+v, want those of %s and %s in id order", got, want[0].ID, want[1].ID)
		}
		byID := map[string]*orcheo.WebhookTrigger{got[0].WorkflowID: got[0], got[1].WorkflowID: got[1]}
		ta, tb := byID[a.ID], byID[b.ID]
		if ta.Handle != a.Handle || ta.Archived || !ta.Config.Enabled || ta.Config.Verify == nil ||
			ta.Config.Verify.SealedSecret != "v1:c2VhbGVk" || ta.Config.Verify.SealedPreviousSecret != "v1:cHJldmlvdXM=" ||
			ta.Config.Verify.SecretSetAt == nil || !ta.Config.Verify.SecretSetAt.Equal(at) {
			t.Fatalf("trigger of a: %+v %+v", ta, ta.Config.Verify)
		}
		if tb.Handle != b.Handle || !tb.Archived || tb.Config.Enabled || !slices.Equal(tb.Config.Methods, []string{"PUT"}) {
			t.Fatalf("trigger of b: %+v %+v", tb, tb.Config)
		}
	})
}
