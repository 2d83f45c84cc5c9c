package mock

import (
	"context"

	"github.com/orcheo/orcheo"
)

var _ orcheo.ChangeFeed = (*ChangeFeed)(nil)

// ChangeFeed is a mock orcheo.ChangeFeed.
type ChangeFeed struct {
	PublishFn   func(ctx context.Context, workflowID string) error
	SubscribeFn func(ctx context.Context) <-chan orcheo.ChangeEvent
}

func (f *ChangeFeed) Publish(ctx context.Context, workflowID string) error {
	return f.PublishFn(ctx, workflowID)
}

func (f *ChangeFeed) Subscribe(ctx context.Context) <-chan orcheo.ChangeEvent {
	return f.SubscribeFn(ctx)
}
