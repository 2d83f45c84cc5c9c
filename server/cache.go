package server

import (
	"container/list"
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// Defaults of the webhook cache (Server.WebhookCacheTTL and
// WebhookCacheSize).
const (
	// WebhookCacheTTLDefault bounds the age of a cached answer. It is the
	// safety net behind the change feed, for the one case the feed cannot
	// see: a replica that stored a change but could not publish it (its
	// own link to Redis failed while the others' held). A longer life
	// saves nothing worth having: a hot workflow costs two lookups per
	// TTL and replica.
	WebhookCacheTTLDefault = 10 * time.Second
	// WebhookCacheSizeDefault caps each of the cache's three maps
	// (workflows by id, handles, refs found missing), least recently used
	// out first. Refs come from the internet, so the map of missing ones
	// is what an attacker can fill: capped, a flood of made-up refs costs
	// the lookups it costs without a cache, and evicts no real workflow.
	WebhookCacheSizeDefault = 4096
	// publishTimeout bounds the publishing of a change after its write.
	publishTimeout = 2 * time.Second
)

// webhookCache is a read-through cache of what the public webhook route
// reads for each request: the workflow named by an id or a handle, and its
// webhook config (secrets sealed, as stored; they never leave memory).
// Only the webhook route reads it; the management routes read the store,
// which they change.
//
// Staleness, and why it is bounded:
//   - A change made through this process is dropped from the cache by its
//     handler at once (Server.changed), before the answer.
//   - A change made through another process reaches this one through the
//     ChangeFeed (Redis pub/sub) within milliseconds; the writer publishes
//     after its commit, so a lookup after the message sees the change.
//   - Pub/sub loses what is published while a subscriber is disconnected.
//     So the cache serves nothing and stores nothing while its
//     subscription is down (noticed at once on a closed connection, within
//     about 1 s on a silent one: tasks.ChangeFeedPingIntervalDefault), and
//     empties itself when the subscription is back. With Redis down every
//     webhook reads the store, as without a cache.
//   - A lookup that began before an invalidation must not store its
//     result after it: every invalidation bumps gen, and a result is kept
//     only if gen did not move while it was read.
//   - Whatever else goes wrong (a writer that could not publish), no
//     entry is served older than ttl.
//
// Handles never change and workflows are never deleted, so a handle's id
// stays true; only "not found" answers turn false (a workflow is created),
// so every change drops all of them.
//
// Values are shared between requests and must be treated as read-only.
type webhookCache struct {
	ttl time.Duration
	now func() time.Time
	log logrus.FieldLogger

	mu sync.Mutex
	// up is true while the change feed delivers every change.
	up bool
	// gen counts invalidations; see above.
	gen       uint64
	workflows *lru[*cachedWebhook] // workflow id → workflow and config
	handles   *lru[string]         // handle → workflow id
	missing   *lru[struct{}]       // ref → none such
}

// cachedWebhook is a workflow and its webhook config as read together.
type cachedWebhook struct {
	wf  *orcheo.Workflow
	cfg *orcheo.WebhookConfig
}

func newWebhookCache(ttl time.Duration, size int, log logrus.FieldLogger) *webhookCache {
	if ttl <= 0 {
		ttl = WebhookCacheTTLDefault
	}
	if size <= 0 {
		size = WebhookCacheSizeDefault
	}
	return &webhookCache{
		ttl: ttl, now: time.Now, log: log,
		workflows: newLRU[*cachedWebhook](size),
		handles:   newLRU[string](size),
		missing:   newLRU[struct{}](size),
	}
}

// get returns the cached answer for ref: the workflow and config, or
// found false with hit true for a ref known missing. hit is false when the
// cache cannot answer.
func (c *webhookCache) get(ref string) (e *cachedWebhook, found, hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up {
		return nil, false, false
	}
	now := c.now()
	if _, ok := c.missing.get(ref, now); ok {
		return nil, false, true
	}
	id := ref
	if !orcheo.IsID(ref) {
		if id, _ = c.handles.get(ref, now); id == "" {
			return nil, false, false
		}
	}
	if e, ok := c.workflows.get(id, now); ok {
		return e, true, true
	}
	return nil, false, false
}

// begin returns the generation a lookup of the store starts in, for put.
func (c *webhookCache) begin() (gen uint64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, c.now()
}

// put keeps a lookup's answer (e nil: ref not found) unless the cache was
// invalidated or went down since begin. The entry expires ttl after the
// lookup began, so its age counts from before the read.
func (c *webhookCache) put(gen uint64, at time.Time, ref string, e *cachedWebhook) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up || c.gen != gen {
		return
	}
	expires := at.Add(c.ttl)
	if e == nil {
		c.missing.put(ref, struct{}{}, expires)
		return
	}
	c.workflows.put(e.wf.ID, e, expires)
	c.handles.put(e.wf.Handle, e.wf.ID, expires)
}

// invalidate drops workflowID's entry and every "not found" (the change
// may be its creation, under a handle or id looked up before).
func (c *webhookCache) invalidate(workflowID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.workflows.remove(workflowID)
	c.missing.clear()
}

// reset empties the cache and says whether it may serve from now on.
func (c *webhookCache) reset(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.up = up
	c.workflows.clear()
	c.handles.clear()
	c.missing.clear()
}

// follow applies a change feed subscription's events until it ends, then
// leaves the cache down (serving nothing).
func (c *webhookCache) follow(events <-chan orcheo.ChangeEvent) {
	defer c.reset(false)
	for ev := range events {
		switch ev.Kind {
		case orcheo.ChangeConnected:
			c.reset(true)
		case orcheo.ChangeDisconnected:
			c.reset(false)
		case orcheo.ChangeWorkflow:
			c.invalidate(ev.WorkflowID)
		}
	}
}

// startCache starts the webhook cache on the change feed, if there is
// one; without a feed the webhook route reads the store for every request
// (another replica's changes could not reach this one). Open calls it.
func (s *Server) startCache() {
	if s.Changes == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := newWebhookCache(s.WebhookCacheTTL, s.WebhookCacheSize, s.Logger.WithField("component", "webhook_cache"))
	done := make(chan struct{})
	events := s.Changes.Subscribe(ctx)
	go func() {
		defer close(done)
		c.follow(events)
	}()
	s.cache = c
	s.stopCache = func() {
		cancel()
		<-done
	}
}

// lookupWebhook returns the workflow ref names and its webhook config, from
// the cache when it can answer, else from the store (keeping the answer).
// Returns ENOTFOUND when there is no such workflow.
func (s *Server) lookupWebhook(ctx context.Context, ref string) (*orcheo.Workflow, *orcheo.WebhookConfig, error) {
	c := s.cache
	if c == nil {
		return s.readWebhook(ctx, ref)
	}
	if e, found, hit := c.get(ref); hit {
		if !found {
			return nil, nil, errNoWebhook
		}
		return e.wf, e.cfg, nil
	}
	gen, at := c.begin()
	wf, cfg, err := s.readWebhook(ctx, ref)
	switch {
	case orcheo.ErrorCode(err) == orcheo.ENOTFOUND:
		c.put(gen, at, ref, nil)
	case err == nil:
		c.put(gen, at, ref, &cachedWebhook{wf: wf, cfg: cfg})
	}
	return wf, cfg, err
}

// readWebhook reads a workflow and its webhook config from the store.
func (s *Server) readWebhook(ctx context.Context, ref string) (*orcheo.Workflow, *orcheo.WebhookConfig, error) {
	wf, err := s.Workflows.FindWorkflowByRef(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := s.Triggers.FindWebhookConfig(ctx, wf.ID)
	if err != nil {
		return nil, nil, err
	}
	return wf, cfg, nil
}

// changed tells the caches of every API process that workflowID changed:
// this one's at once, the others' through the change feed. A write
// handler calls it after its write succeeded. A failed publish is logged,
// not answered: the change is stored, and the other replicas' entries
// expire within WebhookCacheTTL.
func (s *Server) changed(r *http.Request, workflowID string) {
	if s.cache != nil {
		s.cache.invalidate(workflowID)
	}
	if s.Changes == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), publishTimeout)
	defer cancel()
	if err := s.Changes.Publish(ctx, workflowID); err != nil {
		loggerFrom(r).WithError(err).WithField("workflow_id", workflowID).
			Warn("publish workflow change; other API processes may serve the old one from their cache for up to its TTL")
	}
}

// lru is a map of at most max entries with expiry, dropping the least
// recently used when full. It is not safe for concurrent use (webhookCache
// holds its lock).
type lru[V any] struct {
	max   int
	order *list.List // front: most recently used; values *lruEntry[V]
	items map[string]*list.Element
}

type lruEntry[V any] struct {
	key     string
	value   V
	expires time.Time
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (l *lru[V]) get(key string, now time.Time) (V, bool) {
	var zero V
	el, ok := l.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*lruEntry[V])
	if !now.Before(e.expires) {
		l.order.Remove(el)
		delete(l.items, key)
		return zero, false
	}
	l.order.MoveToFront(el)
	return e.value, true
}

func (l *lru[V]) put(key string, value V, expires time.Time) {
	if el, ok := l.items[key]; ok {
		el.Value = &lruEntry[V]{key: key, value: value, expires: expires}
		l.order.MoveToFront(el)
		return
	}
	l.items[key] = l.order.PushFront(&lruEntry[V]{key: key, value: value, expires: expires})
	for l.order.Len() > l.max {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.items, oldest.Value.(*lruEntry[V]).key)
	}
}

func (l *lru[V]) remove(key string) {
	if el, ok := l.items[key]; ok {
		l.order.Remove(el)
		delete(l.items, key)
	}
}

func (l *lru[V]) clear() {
	l.order.Init()
	clear(l.items)
}

func (l *lru[V]) len() int { return l.order.Len() }
