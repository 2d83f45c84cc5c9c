package mock

import (
	"context"

	"github.com/orcheo/orcheo"
)

var _ orcheo.RunSubmitter = (*RunSubmitter)(nil)

// RunSubmitter is a mock orcheo.RunSubmitter.
type RunSubmitter struct {
	SubmitRunFn   func(ctx context.Context, wf *orcheo.Workflow, run *orcheo.Run) (*orcheo.Run, bool, error)
	PublishRunsFn func(ctx context.Context, runs []*orcheo.Run, opts orcheo.PublishOptions) []error
}

func (s *RunSubmitter) SubmitRun(ctx context.Context, wf *orcheo.Workflow, run *orcheo.Run) (*orcheo.Run, bool, error) {
	return s.SubmitRunFn(ctx, wf, run)
}

func (s *RunSubmitter) PublishRuns(ctx context.Context, runs []*orcheo.Run, opts orcheo.PublishOptions) []error {
	return s.PublishRunsFn(ctx, runs, opts)
}
