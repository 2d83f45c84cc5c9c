package mock

import (
	"context"

	"github.com/orcheo/orcheo"
)

var _ orcheo.TriggerService = (*TriggerService)(nil)

// TriggerService is a mock orcheo.TriggerService.
type TriggerService struct {
	FindWebhookConfigFn   func(ctx context.Context, workflowID string) (*orcheo.WebhookConfig, error)
	SetWebhookConfigFn    func(ctx context.Context, workflowID string, cfg *orcheo.WebhookConfig) error
	UpdateWebhookConfigFn func(ctx context.Context, workflowID string, fn func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error)) (*orcheo.WebhookConfig, error)

	FindWebhookTriggersFn func(ctx context.Context) ([]*orcheo.WebhookTrigger, error)
}

func (s *TriggerService) FindWebhookConfig(ctx context.Context, workflowID string) (*orcheo.WebhookConfig, error) {
	return s.FindWebhookConfigFn(ctx, workflowID)
}

func (s *TriggerService) SetWebhookConfig(ctx context.Context, workflowID string, cfg *orcheo.WebhookConfig) error {
	return s.SetWebhookConfigFn(ctx, workflowID, cfg)
}

func (s *TriggerService) UpdateWebhookConfig(ctx context.Context, workflowID string, fn func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error)) (*orcheo.WebhookConfig, error) {
	return s.UpdateWebhookConfigFn(ctx, workflowID, fn)
}

func (s *TriggerService) FindWebhookTriggers(ctx context.Context) ([]*orcheo.WebhookTrigger, error) {
	return s.FindWebhookTriggersFn(ctx)
}
