package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
	trdb "github.com/orcheo/orcheo/tasks/rdb"
	"github.com/redis/go-redis/v9"
)

// Bounds of the WebhookGuard.
const (
	// WebhookRateBuckets is how many time buckets a rate-limit window is
	// kept in (package rdb's webhookAllowCmd): a key holds at most this many counters
	// plus one (the bucket the window's start falls in) whatever the limit, and a refused sender may wait up to one
	// bucket (window/60: 1 s of a minute) longer than an exact log says.
	WebhookRateBuckets = 60
	// WebhookMaxKeyBytes bounds the guard keys used as they are; a longer
	// key (or one starting with "#") is replaced by "#" and its SHA-256 in
	// hex, so a Redis key is never longer than the prefix plus 142 bytes
	// (":webhook:rate:" and 128) whatever the caller puts in it.
	WebhookMaxKeyBytes = 128
	// WebhookGuardTimeout is the read and write timeout of the guard that
	// Queue.WebhookGuard returns, in place of go-redis's 3 s: a script
	// answers in microseconds, and a webhook should not wait seconds on a
	// Redis that hangs. (go-redis 9.0.5 ignores the request context's
	// deadline on a connection unless ContextTimeoutEnabled, which the
	// Queue's client leaves off for its blocking reads.)
	WebhookGuardTimeout = 500 * time.Millisecond
)

// WebhookGuard implements orcheo.WebhookGuard on Redis, so every API
// process that shares the Redis (and the prefix) shares the rate-limit
// windows and the record of deliveries already seen. It is safe for
// concurrent use. It does not own its client: closing the client (or the
// Queue that made the guard) ends it.
//
// Keys are opaque to the guard; the server composes them ("wf:<id>",
// "ip:<workflow id>:<addr>", a delivery id or a signature).
type WebhookGuard struct {
	rdb *trdb.RDB
	cfg Config // only Prefix is read
	// now, when set (tests), replaces Redis's TIME in Allow.
	now func() time.Time
}

var _ orcheo.WebhookGuard = (*WebhookGuard)(nil)

// NewWebhookGuard returns a guard on client with its keys under prefix
// ("<prefix>:webhook:rate:<key>", "<prefix>:webhook:seen:<key>"); an empty
// prefix is PrefixDefault. It panics on a nil client or a prefix that
// Config.Validate refuses (programmer errors). The API process uses
// Queue.WebhookGuard, which shares the Queue's client.
func NewWebhookGuard(client redis.UniversalClient, prefix string) *WebhookGuard {
	if client == nil {
		panic("tasks: NewWebhookGuard: nil Redis client")
	}
	if prefix == "" {
		prefix = PrefixDefault
	}
	if strings.ContainsAny(prefix, " \t\r\n{}") {
		panic(fmt.Sprintf("tasks: NewWebhookGuard: Redis key prefix %q must not contain spaces or braces", prefix))
	}
	return &WebhookGuard{rdb: trdb.New(client, prefix), cfg: Config{Prefix: prefix}}
}

// WebhookGuard returns a guard on the Queue's Redis client and prefix, so
// the API process keeps one client (fail-fast: one retry, 2 s dial
// timeout) for publishing and guarding; only the read and write timeouts
// are the guard's own (WebhookGuardTimeout; a Cluster client keeps its
// own, as go-redis cannot change them on it). It is valid while that
// client is open.
func (q *Queue) WebhookGuard() *WebhookGuard {
	client := q.rdb.client
	if c, ok := client.(*redis.Client); ok {
		client = c.WithTimeout(WebhookGuardTimeout)
	}
	return NewWebhookGuard(client, q.cfg.Prefix)
}

// Allow counts one request against key's limit per window, in a sliding
// window shared by every process on the Redis (package rdb's webhookAllowCmd), and
// reports whether it is within it. Never more than limit requests are
// admitted within any span of window; a refused request is not counted.
// When refused, retryAfter (at least 1 ms, exact to the ms) is when one
// more would be admitted, counting the oldest requests leaving the window;
// round it up to whole seconds, at least 1, for a Retry-After header.
//
// Errors name the key as it is stored (hashed when long). Redis errors are
// returned, wrapped, with ok false: whether to fail open
// or closed is the caller's choice. A limit below 1 or a window below 1 ms
// is an error too.
func (g *WebhookGuard) Allow(ctx context.Context, key string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error) {
	k, err := webhookKey(key)
	if err != nil {
		return false, 0, err
	}
	if limit < 1 || window < time.Millisecond {
		return false, 0, fmt.Errorf("webhook rate limit of %q: %d per %s: the limit must be at least 1 and the window 1ms", k, limit, window)
	}
	win := window.Milliseconds()
	width := (win + WebhookRateBuckets - 1) / WebhookRateBuckets
	var now int64
	if g.now != nil {
		now = ms(g.now())
	}
	ok, retry, err := g.rdb.WebhookAllow(ctx, k, limit, win, width, now)
	if err != nil {
		return false, 0, fmt.Errorf("webhook rate limit of %q: %w", k, err)
	}
	return ok, time.Duration(retry) * time.Millisecond, nil
}

// Remember stores value under key for ttl (at least 1 ms) unless key
// holds a value already, and returns the value key holds afterwards:
// value itself when it was free. It is one script, so of several
// processes remembering one key at once exactly one stores its value.
// Redis errors are returned, wrapped.
func (g *WebhookGuard) Remember(ctx context.Context, key, value string, ttl time.Duration) (string, error) {
	k, err := webhookKey(key)
	if err != nil {
		return "", err
	}
	if ttl < time.Millisecond {
		return "", fmt.Errorf("webhook replay check of %q: ttl %s is below 1ms", k, ttl)
	}
	if value == "" {
		return "", fmt.Errorf("webhook replay check of %q: empty value", k)
	}
	stored, err := g.rdb.WebhookRemember(ctx, k, value, ttl)
	if err != nil {
		return "", fmt.Errorf("webhook replay check of %q: %w", k, err)
	}
	return stored, nil
}

// Forget removes key if it still holds value. Redis errors are returned,
// wrapped.
func (g *WebhookGuard) Forget(ctx context.Context, key, value string) error {
	k, err := webhookKey(key)
	if err != nil {
		return err
	}
	if err := g.rdb.WebhookForget(ctx, k, value); err != nil {
		return fmt.Errorf("webhook replay forget of %q: %w", k, err)
	}
	return nil
}

// FirstSeen records key for ttl unless it is recorded already, and reports
// whether it was not: false means a replay. Of several processes seeing
// one key at once exactly one gets true.
func (g *WebhookGuard) FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	nonce := orcheo.NewID()
	stored, err := g.Remember(ctx, key, nonce, ttl)
	if err != nil {
		return false, err
	}
	return stored == nonce, nil
}

// webhookKey returns key as it goes into a Redis key: as is when it is
// short, else "#" and its SHA-256 in hex. Keys that start with "#" are
// hashed too, so a key used as is never equals another's hash.
func webhookKey(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("webhook guard: empty key")
	}
	if len(key) <= WebhookMaxKeyBytes && key[0] != '#' {
		return key, nil
	}
	sum := sha256.Sum256([]byte(key))
	return "#" + hex.EncodeToString(sum[:]), nil
}
