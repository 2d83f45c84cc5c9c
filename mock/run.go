package mock

import (
	"context"
	"encoding/json"
	"time"

	"github.com/orcheo/orcheo"
)

var _ orcheo.RunService = (*RunService)(nil)

// RunService is a mock orcheo.RunService.
type RunService struct {
	CreateRunFn           func(ctx context.Context, run *orcheo.Run) (*orcheo.Run, bool, error)
	CreateRunsFn          func(ctx context.Context, runs []*orcheo.Run) []orcheo.RunCreated
	FindRunByIDFn         func(ctx context.Context, id string) (*orcheo.Run, error)
	FindRunsFn            func(ctx context.Context, filter orcheo.RunFilter) ([]*orcheo.Run, int, error)
	ListRunsFn            func(ctx context.Context, filter orcheo.RunFilter) ([]*orcheo.Run, bool, error)
	ClaimRunFn            func(ctx context.Context, id, workerID string, leaseUntil time.Time) (*orcheo.Run, error)
	CompleteRunFn         func(ctx context.Context, id string, attempt int, c orcheo.RunCompletion) (*orcheo.Run, error)
	ClaimRunsFn           func(ctx context.Context, ids []string, workerID string, leaseUntil time.Time) ([]orcheo.RunClaim, error)
	CompleteRunsFn        func(ctx context.Context, cs []orcheo.AttemptCompletion) ([]orcheo.RunCompleted, error)
	SaveRunStepFn         func(ctx context.Context, step *orcheo.RunStep) error
	CancelRunFn           func(ctx context.Context, id string) (*orcheo.Run, error)
	MarkRunUnenqueuedFn   func(ctx context.Context, id string) error
	ClaimUnenqueuedRunsFn func(ctx context.Context, limit int) ([]*orcheo.Run, error)
	ReleaseRunFn          func(ctx context.Context, id string, attempt int) (*orcheo.Run, error)
	SuspendRunFn          func(ctx context.Context, id string, attempt int, notBefore time.Time, checkpoint json.RawMessage) (*orcheo.Run, error)
	HeartbeatRunsFn       func(ctx context.Context, workerID string, ids []string, until time.Time) ([]string, error)
	RescueExpiredRunsFn   func(ctx context.Context, now time.Time, limit int) ([]*orcheo.Run, error)
	ClaimStaleRunsFn      func(ctx context.Context, enqueuedBefore time.Time, limit int) ([]*orcheo.Run, error)
	RetryRunFn            func(ctx context.Context, id string) (*orcheo.Run, error)
	FindCancelRequestedFn func(ctx context.Context, ids []string) ([]string, error)
	CountChildRunsFn      func(ctx context.Context, parentID, rootID, exceptKey string) (int, int, error)
	DeleteFinishedRunsFn  func(ctx context.Context, p orcheo.RunPurge) (int, error)
}

func (s *RunService) CountChildRuns(ctx context.Context, parentID, rootID, exceptKey string) (int, int, error) {
	return s.CountChildRunsFn(ctx, parentID, rootID, exceptKey)
}

func (s *RunService) CreateRun(ctx context.Context, run *orcheo.Run) (*orcheo.Run, bool, error) {
	return s.CreateRunFn(ctx, run)
}

// CreateRuns calls CreateRunsFn, or without one CreateRunFn for each run.
func (s *RunService) CreateRuns(ctx context.Context, runs []*orcheo.Run) []orcheo.RunCreated {
	if s.CreateRunsFn != nil {
		return s.CreateRunsFn(ctx, runs)
	}
	out := make([]orcheo.RunCreated, len(runs))
	for i, run := range runs {
		out[i].Run, out[i].Created, out[i].Err = s.CreateRunFn(ctx, run)
	}
	return out
}

func (s *RunService) FindRunByID(ctx context.Context, id string) (*orcheo.Run, error) {
	return s.FindRunByIDFn(ctx, id)
}

func (s *RunService) FindRuns(ctx context.Context, filter orcheo.RunFilter) ([]*orcheo.Run, int, error) {
	return s.FindRunsFn(ctx, filter)
}

func (s *RunService) ListRuns(ctx context.Context, filter orcheo.RunFilter) ([]*orcheo.Run, bool, error) {
	return s.ListRunsFn(ctx, filter)
}

func (s *RunService) ClaimRun(ctx context.Context, id, workerID string, leaseUntil time.Time) (*orcheo.Run, error) {
	return s.ClaimRunFn(ctx, id, workerID, leaseUntil)
}

func (s *RunService) CompleteRun(ctx context.Context, id string, attempt int, c orcheo.RunCompletion) (*orcheo.Run, error) {
	return s.CompleteRunFn(ctx, id, attempt, c)
}

func (s *RunService) ClaimRuns(ctx context.Context, ids []string, workerID string, leaseUntil time.Time) ([]orcheo.RunClaim, error) {
	return s.ClaimRunsFn(ctx, ids, workerID, leaseUntil)
}

func (s *RunService) CompleteRuns(ctx context.Context, cs []orcheo.AttemptCompletion) ([]orcheo.RunCompleted, error) {
	return s.CompleteRunsFn(ctx, cs)
}

func (s *RunService) SaveRunStep(ctx context.Context, step *orcheo.RunStep) error {
	return s.SaveRunStepFn(ctx, step)
}

func (s *RunService) CancelRun(ctx context.Context, id string) (*orcheo.Run, error) {
	return s.CancelRunFn(ctx, id)
}

func (s *RunService) MarkRunUnenqueued(ctx context.Context, id string) error {
	return s.MarkRunUnenqueuedFn(ctx, id)
}

func (s *RunService) ClaimUnenqueuedRuns(ctx context.Context, limit int) ([]*orcheo.Run, error) {
	return s.ClaimUnenqueuedRunsFn(ctx, limit)
}

func (s *RunService) ReleaseRun(ctx context.Context, id string, attempt int) (*orcheo.Run, error) {
	return s.ReleaseRunFn(ctx, id, attempt)
}

func (s *RunService) SuspendRun(ctx context.Context, id string, attempt int, notBefore time.Time, checkpoint json.RawMessage) (*orcheo.Run, error) {
	return s.SuspendRunFn(ctx, id, attempt, notBefore, checkpoint)
}

func (s *RunService) HeartbeatRuns(ctx context.Context, workerID string, ids []string, until time.Time) ([]string, error) {
	return s.HeartbeatRunsFn(ctx, workerID, ids, until)
}

func (s *RunService) RescueExpiredRuns(ctx context.Context, now time.Time, limit int) ([]*orcheo.Run, error) {
	return s.RescueExpiredRunsFn(ctx, now, limit)
}

func (s *RunService) ClaimStaleRuns(ctx context.Context, enqueuedBefore time.Time, limit int) ([]*orcheo.Run, error) {
	return s.ClaimStaleRunsFn(ctx, enqueuedBefore, limit)
}

func (s *RunService) RetryRun(ctx context.Context, id string) (*orcheo.Run, error) {
	return s.RetryRunFn(ctx, id)
}

func (s *RunService) FindCancelRequested(ctx context.Context, ids []string) ([]string, error) {
	return s.FindCancelRequestedFn(ctx, ids)
}

var _ orcheo.RunQueue = (*RunQueue)(nil)

// RunQueue is a mock orcheo.RunQueue.
type RunQueue struct {
	EnqueueRunFn func(ctx context.Context, run *orcheo.Run) error
	// EnqueueRunsFn, if nil, calls EnqueueRunFn for each run.
	EnqueueRunsFn func(ctx context.Context, runs []*orcheo.Run) []error
}

func (q *RunQueue) EnqueueRun(ctx context.Context, run *orcheo.Run) error {
	return q.EnqueueRunFn(ctx, run)
}

func (q *RunQueue) EnqueueRuns(ctx context.Context, runs []*orcheo.Run) []error {
	if q.EnqueueRunsFn != nil {
		return q.EnqueueRunsFn(ctx, runs)
	}
	return orcheo.EnqueueEach(ctx, runs, q.EnqueueRunFn)
}

var _ orcheo.CancelNotifier = (*CancelNotifier)(nil)

// CancelNotifier is a mock orcheo.CancelNotifier.
type CancelNotifier struct {
	NotifyCancelFn func(ctx context.Context, runID string) error
}

func (n *CancelNotifier) NotifyCancel(ctx context.Context, runID string) error {
	return n.NotifyCancelFn(ctx, runID)
}

func (s *RunService) DeleteFinishedRuns(ctx context.Context, p orcheo.RunPurge) (int, error) {
	return s.DeleteFinishedRunsFn(ctx, p)
}
