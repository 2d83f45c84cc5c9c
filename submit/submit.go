// Package submit implements orcheo.RunSubmitter: the one path by which a
// run is stored and handed to the workers. Submissions that arrive while
// the previous batch is being written are written together, with one
// RunService.CreateRuns (one statement, one commit), and published
// together, with one RunQueue.EnqueueRuns: group commit, as a database log
// does it, so a lone submission waits for no timer and a burst costs one
// round trip per batch instead of one per run.
package submit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
)

// Defaults of Config's zero fields.
const (
	// MaxBatchDefault caps the runs one batch writes and publishes.
	MaxBatchDefault = 100
	// WriteTimeoutDefault bounds one batch's CreateRuns. The batch's
	// callers may wait less: each gives up when its own context ends.
	WriteTimeoutDefault = 10 * time.Second
	// PublishTimeoutDefault bounds one publish, and then the marks of the
	// runs it failed to publish. A stored run's publish finishes even if
	// its caller went away, so it needs a bound of its own.
	PublishTimeoutDefault = 10 * time.Second
	// MaxPublishingDefault is how many batches may be being published at
	// once while the next ones are written. When Redis hangs, submissions
	// then wait instead of piling up goroutines.
	MaxPublishingDefault = 4
)

// Config configures a Submitter. Runs and Queue are required.
type Config struct {
	// Runs stores the runs (CreateRuns) and records failed publishes
	// (MarkRunUnenqueued).
	Runs orcheo.RunService
	// Queue publishes them (EnqueueRuns). If it also has EnqueueRunsFront
	// (tasks.Queue does), PublishOptions.Front publishes at the front.
	Queue orcheo.RunQueue
	// MaxBatch caps a batch; default MaxBatchDefault.
	MaxBatch int
	// WriteTimeout bounds a batch's write; default WriteTimeoutDefault.
	WriteTimeout time.Duration
	// PublishTimeout bounds a publish; default PublishTimeoutDefault.
	PublishTimeout time.Duration
	// MaxPublishing bounds the batches published at once; default
	// MaxPublishingDefault.
	MaxPublishing int
	// Logger; default logrus's standard logger.
	Logger logrus.FieldLogger
}

// frontQueue is a queue that can publish runs at the front of their
// queues, in one round trip: runs[i] goes in front of runs[:i] (tasks.Queue).
type frontQueue interface {
	EnqueueRunsFront(ctx context.Context, runs []*orcheo.Run) []error
}

// Submitter implements orcheo.RunSubmitter. Build it with New, Start it
// before the first SubmitRun and Stop it after the last: it owns one
// goroutine that writes batches, and one per batch being published. Safe
// for concurrent use.
type Submitter struct {
	cfg    Config
	logger logrus.FieldLogger

	// mu guards running and the send on reqs: Stop closes reqs under the
	// write lock, so no SubmitRun can send on a closed channel.
	mu      sync.RWMutex
	running bool
	reqs    chan *request
	done    chan struct{} // closed when the writer has answered every request

	// publishing holds a token per batch being published.
	publishing chan struct{}
}

var _ orcheo.RunSubmitter = (*Submitter)(nil)

// request is one SubmitRun waiting for its batch.
type request struct {
	ctx  context.Context
	run  *orcheo.Run
	done chan orcheo.RunCreated // buffered: the answer never blocks the writer
}

// New fills zero fields of cfg with defaults. It panics if Runs or Queue
// is nil or a field is negative: those are programmer errors.
func New(cfg Config) *Submitter {
	if cfg.Runs == nil || cfg.Queue == nil {
		panic("submit: Config needs Runs and Queue")
	}
	if cfg.MaxBatch < 0 || cfg.WriteTimeout < 0 || cfg.PublishTimeout < 0 || cfg.MaxPublishing < 0 {
		panic("submit: Config fields must not be negative")
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = MaxBatchDefault
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = WriteTimeoutDefault
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = PublishTimeoutDefault
	}
	if cfg.MaxPublishing == 0 {
		cfg.MaxPublishing = MaxPublishingDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.StandardLogger()
	}
	return &Submitter{cfg: cfg, logger: cfg.Logger.WithField("component", "submit")}
}

// Start launches the writer. ctx is not kept: only Stop ends the
// submitter, so that requests still being served after a shutdown signal
// (the HTTP server drains them) can still submit. Starting a started
// submitter does nothing.
func (s *Submitter) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return
	}
	s.running = true
	s.reqs = make(chan *request, 2*s.cfg.MaxBatch)
	s.done = make(chan struct{})
	s.publishing = make(chan struct{}, s.cfg.MaxPublishing)
	go s.write(s.reqs, s.done)
}

// Stop refuses new submissions (EUNAVAILABLE), writes and publishes every
// one already accepted, answers their callers and returns. Stopping a
// submitter that is not running does nothing.
func (s *Submitter) Stop() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.running = false
	close(s.reqs)
	done := s.done
	s.mu.Unlock()
	<-done
}

// Waiting returns how many accepted submissions wait for a batch to take
// them (not counting the batch being written): a queue depth for metrics
// and tests.
func (s *Submitter) Waiting() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.reqs)
}

// SubmitRun implements orcheo.RunSubmitter: the archived check and the
// version choice happen here, then the run joins the next batch and
// SubmitRun waits for that batch's commit (and, for a run it created, its
// publish). The run is validated once, by the store: CreateRuns checks
// each run (Run.Validate, its input with orcheo.CheckJSON) and fails an
// invalid one alone with EINVALID, storing the rest, so the check that
// keeps bad input out of the database lives where every path to it passes.
// (Checking here as well cost a tenth of the api's CPU under load.)
func (s *Submitter) SubmitRun(ctx context.Context, wf *orcheo.Workflow, run *orcheo.Run) (*orcheo.Run, bool, error) {
	if wf.Archived() {
		return nil, false, orcheo.Errorf(orcheo.ECONFLICT, "workflow %q is archived", wf.Handle)
	}
	// A copy: a caller that gives up must not share the run with the
	// batch that may still store and publish it.
	in := *run
	in.WorkflowID, in.VersionID, in.Version, in.Queue = wf.ID, wf.LatestVersionID, wf.LatestVersion, wf.Queue
	req := &request{ctx: ctx, run: &in, done: make(chan orcheo.RunCreated, 1)}
	if err := s.enqueue(ctx, req); err != nil {
		return nil, false, err
	}
	select {
	case res := <-req.done:
		return res.Run, res.Created, res.Err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// errStopped answers submissions to a submitter that is not running.
var errStopped = orcheo.Errorf(orcheo.EUNAVAILABLE, "run submission is shutting down; try again shortly")

// enqueue hands req to the writer, or fails if the submitter is not
// running or ctx ends first.
func (s *Submitter) enqueue(ctx context.Context, req *request) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.running {
		return errStopped
	}
	select {
	case s.reqs <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write is the writer goroutine: it takes the requests waiting (up to
// MaxBatch, without waiting for more) and writes them as one batch, until
// reqs is closed and drained. Then it waits for the publishes in flight.
func (s *Submitter) write(reqs <-chan *request, done chan<- struct{}) {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		close(done)
	}()
	for {
		first, ok := <-reqs
		if !ok {
			return
		}
		batch := []*request{first}
	fill:
		for len(batch) < s.cfg.MaxBatch {
			select {
			case req, ok := <-reqs:
				if !ok {
					break fill
				}
				batch = append(batch, req)
			default:
				break fill
			}
		}
		s.writeBatch(batch, &wg)
	}
}

// writeBatch stores batch, answers at once the requests that created
// nothing, and hands the created runs to a publisher goroutine that
// answers the rest after publishing them.
func (s *Submitter) writeBatch(batch []*request, wg *sync.WaitGroup) {
	live := batch[:0]
	for _, req := range batch {
		// A caller that gave up before its run was written gets nothing
		// stored; it already returned its context's error.
		if err := req.ctx.Err(); err != nil {
			req.done <- orcheo.RunCreated{Err: err}
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	runs := make([]*orcheo.Run, len(live))
	for i, req := range live {
		runs[i] = req.run
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	results := s.cfg.Runs.CreateRuns(ctx, runs)
	cancel()
	var created []*request
	var createdRuns []*orcheo.Run
	for i, req := range live {
		res := results[i]
		if res.Err == nil && res.Created {
			created = append(created, req)
			createdRuns = append(createdRuns, res.Run)
			continue
		}
		req.done <- res
	}
	if len(created) == 0 {
		return
	}
	s.publishing <- struct{}{}
	wg.Add(1)
	go func() {
		defer func() { <-s.publishing; wg.Done() }()
		s.publish(createdRuns, orcheo.PublishOptions{})
		for i, req := range created {
			req.done <- orcheo.RunCreated{Run: createdRuns[i], Created: true}
		}
	}()
}

// PublishRuns implements orcheo.RunSubmitter. The runs are stored, so the
// publish goes on after ctx ends, for up to PublishTimeout.
func (s *Submitter) PublishRuns(ctx context.Context, runs []*orcheo.Run, opts orcheo.PublishOptions) []error {
	return s.publishCtx(context.WithoutCancel(ctx), runs, opts)
}

func (s *Submitter) publish(runs []*orcheo.Run, opts orcheo.PublishOptions) []error {
	return s.publishCtx(context.Background(), runs, opts)
}

// publishCtx publishes runs and marks unenqueued those it could not, so the
// requeuer publishes them later; their EnqueuedAt is cleared. A mark that
// fails too leaves the run stamped as enqueued, without a message: the
// rescuer publishes it again once ReenqueueAfter has passed.
func (s *Submitter) publishCtx(ctx context.Context, runs []*orcheo.Run, opts orcheo.PublishOptions) []error {
	if len(runs) == 0 {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	errs := s.enqueueRuns(pctx, runs, opts)
	cancel()
	var failed []*orcheo.Run
	var first error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, runs[i])
			if first == nil {
				first = err
			}
		}
	}
	if len(failed) == 0 {
		return errs
	}
	s.logger.WithError(first).WithField("runs", len(failed)).Warn("publish runs; leaving them to the requeuer")
	mctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	for _, run := range failed {
		run.EnqueuedAt = nil
		if err := s.cfg.Runs.MarkRunUnenqueued(mctx, run.ID); err != nil {
			s.logger.WithError(err).WithField("run_id", run.ID).Error("mark run unenqueued; it waits for the rescuer")
		}
	}
	return errs
}

// enqueueRuns publishes runs in one EnqueueRuns, or with Front in one
// EnqueueRunsFront, last first, so runs[0] ends up at the front.
func (s *Submitter) enqueueRuns(ctx context.Context, runs []*orcheo.Run, opts orcheo.PublishOptions) []error {
	fq, ok := s.cfg.Queue.(frontQueue)
	if !opts.Front || !ok {
		return checked(runs, s.cfg.Queue.EnqueueRuns(ctx, runs))
	}
	reversed := slices.Clone(runs)
	slices.Reverse(reversed)
	errs := checked(reversed, fq.EnqueueRunsFront(ctx, reversed))
	slices.Reverse(errs)
	return errs
}

// checked is errs, or when a queue broke its contract and returned the
// wrong number of results, an error for every run: counted as failed, they
// are marked for the requeuer instead of being lost.
func checked(runs []*orcheo.Run, errs []error) []error {
	if len(errs) == len(runs) {
		return errs
	}
	errs = make([]error, len(runs))
	for i := range errs {
		errs[i] = errors.New("submit: the queue returned the wrong number of publish results")
	}
	return errs
}
