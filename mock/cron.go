package mock

import (
	"context"
	"time"

	"github.com/orcheo/orcheo"
)

var (
	_ orcheo.CronService    = (*CronService)(nil)
	_ orcheo.CronDispatcher = (*CronDispatcher)(nil)
)

// CronService is a mock orcheo.CronService.
type CronService struct {
	FindCronTriggerFn    func(ctx context.Context, workflowID string) (*orcheo.CronTrigger, error)
	FindCronTriggersFn   func(ctx context.Context) ([]*orcheo.CronTrigger, error)
	SetCronTriggerFn     func(ctx context.Context, t *orcheo.CronTrigger) error
	DeleteCronTriggerFn  func(ctx context.Context, workflowID string) error
	MarkCronDispatchedFn func(ctx context.Context, workflowID string, slot time.Time) error
	FindActiveCronRunFn  func(ctx context.Context, workflowID string, before time.Time) (*orcheo.Run, error)
	CreateSkippedRunFn   func(ctx context.Context, run *orcheo.Run, reason string) (*orcheo.Run, bool, error)
}

func (s *CronService) FindCronTrigger(ctx context.Context, workflowID string) (*orcheo.CronTrigger, error) {
	return s.FindCronTriggerFn(ctx, workflowID)
}

func (s *CronService) FindCronTriggers(ctx context.Context) ([]*orcheo.CronTrigger, error) {
	return s.FindCronTriggersFn(ctx)
}

func (s *CronService) SetCronTrigger(ctx context.Context, t *orcheo.CronTrigger) error {
	return s.SetCronTriggerFn(ctx, t)
}

func (s *CronService) DeleteCronTrigger(ctx context.Context, workflowID string) error {
	return s.DeleteCronTriggerFn(ctx, workflowID)
}

func (s *CronService) MarkCronDispatched(ctx context.Context, workflowID string, slot time.Time) error {
	return s.MarkCronDispatchedFn(ctx, workflowID, slot)
}

func (s *CronService) FindActiveCronRun(ctx context.Context, workflowID string, before time.Time) (*orcheo.Run, error) {
	return s.FindActiveCronRunFn(ctx, workflowID, before)
}

func (s *CronService) CreateSkippedRun(ctx context.Context, run *orcheo.Run, reason string) (*orcheo.Run, bool, error) {
	return s.CreateSkippedRunFn(ctx, run, reason)
}

// CronDispatcher is a mock orcheo.CronDispatcher.
type CronDispatcher struct {
	DispatchCronFn func(ctx context.Context, now *time.Time) (*orcheo.CronDispatch, error)
}

func (d *CronDispatcher) DispatchCron(ctx context.Context, now *time.Time) (*orcheo.CronDispatch, error) {
	return d.DispatchCronFn(ctx, now)
}
