package server_test

// A stand-in store for developing the handler tests before db/ exists. It
// follows the root interfaces' contracts closely enough for the handlers;
// the store's own behaviour is tested by db/storetest.

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/orcheo/orcheo"
)

type memStore struct {
	mu        sync.Mutex
	workflows map[string]*orcheo.Workflow
	versions  map[string][]*orcheo.WorkflowVersion
	runs      map[string]*orcheo.Run
	enqueued  map[string]bool
	hooks     map[string]*orcheo.WebhookConfig
}

func newMemStore() *memStore {
	return &memStore{
		workflows: map[string]*orcheo.Workflow{},
		versions:  map[string][]*orcheo.WorkflowVersion{},
		runs:      map[string]*orcheo.Run{},
		enqueued:  map[string]bool{},
		hooks:     map[string]*orcheo.WebhookConfig{},
	}
}

func (m *memStore) find(ref string) (*orcheo.Workflow, error) {
	for _, wf := range m.workflows {
		if wf.ID == ref || wf.Handle == ref {
			c := *wf
			return &c, nil
		}
	}
	return nil, orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q not found", ref)
}

func (m *memStore) FindWorkflowByRef(ctx context.Context, ref string) (*orcheo.Workflow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.find(ref)
}

func (m *memStore) FindWorkflows(ctx context.Context, f orcheo.WorkflowFilter) ([]*orcheo.Workflow, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*orcheo.Workflow
	for _, wf := range m.workflows {
		if wf.Archived() && !f.IncludeArchived {
			continue
		}
		c := *wf
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	total := len(out)
	out = out[min(f.Offset, len(out)):]
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, total, nil
}

func (m *memStore) CreateWorkflow(ctx context.Context, wf *orcheo.Workflow, def json.RawMessage) (*orcheo.WorkflowVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := wf.Validate(); err != nil {
		return nil, err
	}
	if _, err := m.find(wf.Handle); err == nil {
		return nil, orcheo.Errorf(orcheo.ECONFLICT, "handle %q is taken", wf.Handle)
	}
	wf.ID, wf.CreatedAt = orcheo.NewID(), time.Now()
	v := &orcheo.WorkflowVersion{ID: orcheo.NewID(), WorkflowID: wf.ID, Version: 1, Definition: def, CreatedAt: wf.CreatedAt}
	wf.LatestVersion, wf.LatestVersionID = 1, v.ID
	c := *wf
	m.workflows[wf.ID] = &c
	m.versions[wf.ID] = []*orcheo.WorkflowVersion{v}
	return v, nil
}

func (m *memStore) CreateWorkflowVersion(ctx context.Context, id string, def json.RawMessage) (*orcheo.WorkflowVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	wf, ok := m.workflows[id]
	if !ok {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "workflow not found")
	} else if wf.Archived() {
		return nil, orcheo.Errorf(orcheo.ECONFLICT, "workflow is archived")
	}
	v := &orcheo.WorkflowVersion{ID: orcheo.NewID(), WorkflowID: id, Version: len(m.versions[id]) + 1, Definition: def, CreatedAt: time.Now()}
	m.versions[id] = append(m.versions[id], v)
	wf.LatestVersion, wf.LatestVersionID = v.Version, v.ID
	return v, nil
}

func (m *memStore) FindWorkflowVersions(ctx context.Context, id string) ([]*orcheo.WorkflowVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*orcheo.WorkflowVersion(nil), m.versions[id]...), nil
}

func (m *memStore) FindWorkflowVersionByID(ctx context.Context, id string) (*orcheo.WorkflowVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, vs := range m.versions {
		for _, v := range vs {
			if v.ID == id {
				return v, nil
			}
		}
	}
	return nil, orcheo.Errorf(orcheo.ENOTFOUND, "version not found")
}

func (m *memStore) ArchiveWorkflow(ctx context.Context, id string) (*orcheo.Workflow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	wf, ok := m.workflows[id]
	if !ok {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "workflow not found")
	}
	if wf.ArchivedAt == nil {
		now := time.Now()
		wf.ArchivedAt = &now
	}
	c := *wf
	return &c, nil
}

func (m *memStore) CreateRun(ctx context.Context, run *orcheo.Run) (*orcheo.Run, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := run.Validate(); err != nil {
		return nil, false, err
	}
	if run.IdempotencyKey != "" {
		for _, r := range m.runs {
			if r.WorkflowID == run.WorkflowID && r.IdempotencyKey == run.IdempotencyKey {
				c := *r
				return &c, false, nil
			}
		}
	}
	now := time.Now()
	run.ID, run.Status, run.CreatedAt, run.EnqueuedAt, run.MaxAttempts = orcheo.NewID(), orcheo.RunPending, now, &now, 1
	c := *run
	m.runs[run.ID] = &c
	m.enqueued[run.ID] = true
	return run, true, nil
}

func (m *memStore) FindRunByID(ctx context.Context, id string) (*orcheo.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[id]
	if !ok {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "run %q not found", id)
	}
	c := *r
	return &c, nil
}

func (m *memStore) FindRuns(ctx context.Context, f orcheo.RunFilter) ([]*orcheo.Run, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*orcheo.Run
	for _, r := range m.runs {
		if (f.WorkflowID == nil || *f.WorkflowID == r.WorkflowID) && (f.Status == nil || *f.Status == r.Status) {
			c := *r
			c.Steps = nil
			out = append(out, &c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	total := len(out)
	out = out[min(f.Offset, len(out)):]
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, total, nil
}

func (m *memStore) ClaimRun(ctx context.Context, id, workerID string, lease time.Time) (*orcheo.Run, error) {
	panic("not used by the server")
}

func (m *memStore) CompleteRun(ctx context.Context, id string, attempt int, c orcheo.RunCompletion) (*orcheo.Run, error) {
	panic("not used by the server")
}

func (m *memStore) CancelRun(ctx context.Context, id string) (*orcheo.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[id]
	if !ok {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "run not found")
	} else if r.Status != orcheo.RunPending {
		return nil, orcheo.Errorf(orcheo.ECONFLICT, "run is %s, not pending", r.Status)
	}
	now := time.Now()
	r.Status, r.CompletedAt = orcheo.RunCancelled, &now
	c := *r
	return &c, nil
}

func (m *memStore) MarkRunUnenqueued(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enqueued[id] = false
	m.runs[id].EnqueuedAt = nil
	return nil
}

func (m *memStore) ClaimUnenqueuedRuns(ctx context.Context, limit int) ([]*orcheo.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*orcheo.Run
	for id, ok := range m.enqueued {
		if !ok && len(out) < limit {
			m.enqueued[id] = true
			out = append(out, &orcheo.Run{ID: id, Queue: m.runs[id].Queue})
		}
	}
	return out, nil
}

func (m *memStore) FindWebhookConfig(ctx context.Context, id string) (*orcheo.WebhookConfig, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.hooks[id]; ok {
		cc := *c
		return &cc, nil
	}
	return &orcheo.WebhookConfig{}, nil
}

func (m *memStore) SetWebhookConfig(ctx context.Context, id string, cfg *orcheo.WebhookConfig) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.workflows[id]; !ok {
		return orcheo.Errorf(orcheo.ENOTFOUND, "workflow not found")
	}
	c := *cfg
	m.hooks[id] = &c
	return nil
}
