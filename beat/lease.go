package beat

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// LeaseTTLDefault is how long a beat's lease lasts without renewal: the
// longest a standby beat waits after the active one died.
const LeaseTTLDefault = 15 * time.Second

// RedisLease is a leader lease in one Redis key: whoever holds the key is
// the active beat. The value is the holder's Owner, so only the holder can
// extend or delete it. Safe for concurrent use.
type RedisLease struct {
	Client *redis.Client
	// Key is the lease key, e.g. "orcheo:beat:leader".
	Key string
	// Owner identifies this beat (host, pid and a random part).
	Owner string
	// TTL is the lease's lifetime; 0 means LeaseTTLDefault.
	TTL time.Duration
}

// extendScript extends the lease only while it is still ours.
//
//	KEYS[1] the lease key
//	ARGV[1] owner
//	ARGV[2] TTL in milliseconds
//
// Returns 1 if extended, 0 if the key is absent or held by someone else.
var extendScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// releaseScript deletes the lease only while it is still ours.
//
//	KEYS[1] the lease key
//	ARGV[1] owner
//
// Returns 1 if deleted, 0 otherwise.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

func (l *RedisLease) ttl() time.Duration {
	if l.TTL <= 0 {
		return LeaseTTLDefault
	}
	return l.TTL
}

// Acquire takes the lease if it is free (SET NX PX) or extends it if it is
// already ours, and reports whether this beat holds it now.
func (l *RedisLease) Acquire(ctx context.Context) (bool, error) {
	ok, err := l.Client.SetNX(ctx, l.Key, l.Owner, l.ttl()).Result()
	if err != nil {
		return false, fmt.Errorf("take beat lease %s: %w", l.Key, err)
	}
	if ok {
		return true, nil
	}
	n, err := extendScript.Run(ctx, l.Client, []string{l.Key}, l.Owner, l.ttl().Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("extend beat lease %s: %w", l.Key, err)
	}
	return n == 1, nil
}

// Release gives the lease up if this beat holds it, so a standby takes
// over at once instead of after the TTL.
func (l *RedisLease) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.Client, []string{l.Key}, l.Owner).Err(); err != nil {
		return fmt.Errorf("release beat lease %s: %w", l.Key, err)
	}
	return nil
}
