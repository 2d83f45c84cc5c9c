// Package mock holds function-field implementations of the root interfaces,
// for tests where the dependency is not what is being tested (such as HTTP
// status mapping). Calling a method whose function field is nil panics, so a
// test notices an unexpected call.
package mock

import (
	"context"
	"encoding/json"

	"github.com/orcheo/orcheo"
)

var _ orcheo.WorkflowService = (*WorkflowService)(nil)

// WorkflowService is a mock orcheo.WorkflowService.
type WorkflowService struct {
	FindWorkflowByRefFn       func(ctx context.Context, ref string) (*orcheo.Workflow, error)
	FindWorkflowsFn           func(ctx context.Context, filter orcheo.WorkflowFilter) ([]*orcheo.Workflow, int, error)
	CreateWorkflowFn          func(ctx context.Context, wf *orcheo.Workflow, definition json.RawMessage) (*orcheo.WorkflowVersion, error)
	CreateWorkflowVersionFn   func(ctx context.Context, workflowID string, definition json.RawMessage) (*orcheo.WorkflowVersion, error)
	FindWorkflowVersionsFn    func(ctx context.Context, workflowID string) ([]*orcheo.WorkflowVersion, error)
	FindWorkflowVersionByIDFn func(ctx context.Context, id string) (*orcheo.WorkflowVersion, error)
	ArchiveWorkflowFn         func(ctx context.Context, id string) (*orcheo.Workflow, error)
}

func (s *WorkflowService) FindWorkflowByRef(ctx context.Context, ref string) (*orcheo.Workflow, error) {
	return s.FindWorkflowByRefFn(ctx, ref)
}

func (s *WorkflowService) FindWorkflows(ctx context.Context, filter orcheo.WorkflowFilter) ([]*orcheo.Workflow, int, error) {
	return s.FindWorkflowsFn(ctx, filter)
}

func (s *WorkflowService) CreateWorkflow(ctx context.Context, wf *orcheo.Workflow, definition json.RawMessage) (*orcheo.WorkflowVersion, error) {
	return s.CreateWorkflowFn(ctx, wf, definition)
}

func (s *WorkflowService) CreateWorkflowVersion(ctx context.Context, workflowID string, definition json.RawMessage) (*orcheo.WorkflowVersion, error) {
	return s.CreateWorkflowVersionFn(ctx, workflowID, definition)
}

func (s *WorkflowService) FindWorkflowVersions(ctx context.Context, workflowID string) ([]*orcheo.WorkflowVersion, error) {
	return s.FindWorkflowVersionsFn(ctx, workflowID)
}

func (s *WorkflowService) FindWorkflowVersionByID(ctx context.Context, id string) (*orcheo.WorkflowVersion, error) {
	return s.FindWorkflowVersionByIDFn(ctx, id)
}

func (s *WorkflowService) ArchiveWorkflow(ctx context.Context, id string) (*orcheo.Workflow, error) {
	return s.ArchiveWorkflowFn(ctx, id)
}

var _ orcheo.Engine = (*Engine)(nil)

// Engine is a mock orcheo.Engine.
type Engine struct {
	CompileFn func(definition []byte) (json.RawMessage, error)
	ExecuteFn func(ctx context.Context, definition json.RawMessage, run *orcheo.Run, opts orcheo.ExecuteOptions) *orcheo.Execution
}

func (e *Engine) Compile(definition []byte) (json.RawMessage, error) { return e.CompileFn(definition) }

func (e *Engine) Execute(ctx context.Context, definition json.RawMessage, run *orcheo.Run, opts orcheo.ExecuteOptions) *orcheo.Execution {
	return e.ExecuteFn(ctx, definition, run, opts)
}
