package tasks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// rdb is orcheo's access to Redis for the broker, the rescuer and the
// leader elector. Every change to several keys is one Lua script below, so
// it happens entirely or not at all; each script's comment lists its KEYS,
// ARGV and return value. The one command outside a script is BLMOVE in
// dequeue: Redis refuses blocking commands inside scripts, and BLMOVE is
// atomic by itself. Times are passed in (ms since the epoch) from the
// caller's clock, so scripts behave the same on redis-server and miniredis;
// the one exception is webhookAllowCmd, which reads Redis's TIME so that API
// replicas with skewed clocks share one window.
type rdb struct {
	client *redis.Client
	cfg    *Config
}

// newRDB connects lazily to cfg.RedisURL (validated).
func newRDB(cfg *Config) (*rdb, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %s", redactErr(err, cfg.RedisURL))
	}
	// Fail fast while Redis is down: callers back off themselves, and the
	// API answers its client instead of waiting out go-redis's retries.
	opt.MaxRetries = 1
	opt.DialTimeout = 2 * time.Second
	return &rdb{client: redis.NewClient(opt), cfg: cfg}, nil
}

func (r *rdb) close() error { return r.client.Close() }

func ms(t time.Time) int64 { return t.UnixMilli() }

// publishCmd adds a message to a queue (at its end, or at its front for a
// run rescued from a dead worker: it was in line before anything queued
// since), or to its delayed set when it has an ETA, and counts it for its
// run.
//
// KEYS[1] -> P:queue:<queue>
// KEYS[2] -> P:queue:<queue>:delayed
// KEYS[3] -> P:messages
// ARGV[1] -> message (machinery signature JSON)
// ARGV[2] -> run id ("" when the message is not a run's)
// ARGV[3] -> ETA in ms since the epoch, or 0 for "now"
// ARGV[4] -> "1" to add a ready message at the front of the queue, else "0"
// Returns 1.
var publishCmd = redis.NewScript(`
if tonumber(ARGV[3]) > 0 then
	redis.call("ZADD", KEYS[2], ARGV[3], ARGV[1])
elseif ARGV[4] == "1" then
	redis.call("LPUSH", KEYS[1], ARGV[1])
else
	redis.call("RPUSH", KEYS[1], ARGV[1])
end
if ARGV[2] ~= "" then
	redis.call("HINCRBY", KEYS[3], ARGV[2], 1)
end
return 1`)

// publish adds msg at the end of queueKey (or to its delayed set until eta).
func (r *rdb) publish(ctx context.Context, queueKey, msg, runID string, eta time.Time) error {
	return r.publishAt(ctx, queueKey, msg, runID, eta, false)
}

// publishFront adds msg at the front of queueKey (or to its delayed set
// until eta), where the next consumer takes it.
func (r *rdb) publishFront(ctx context.Context, queueKey, msg, runID string, eta time.Time) error {
	return r.publishAt(ctx, queueKey, msg, runID, eta, true)
}

func (r *rdb) publishAt(ctx context.Context, queueKey, msg, runID string, eta time.Time, front bool) error {
	var at int64
	if !eta.IsZero() {
		at = ms(eta)
	}
	where := "0"
	if front {
		where = "1"
	}
	keys := []string{queueKey, delayedKey(queueKey), r.cfg.messagesKey()}
	if err := publishCmd.Run(ctx, r.client, keys, msg, runID, at, where).Err(); err != nil {
		return fmt.Errorf("publish to %s: %w", queueKey, err)
	}
	return nil
}

// errReaped is dequeue's answer to a consumer the reaper has forgotten.
var errReaped = errors.New("consumer is not registered (reaped)")

// takeCmd moves the oldest message of a queue into a consumer's processing
// list, but only while the consumer is registered. A consumer that was
// paused past its TTL has been reaped; were it to take a message and crash
// before its next heartbeat re-registered it, the message would sit in a
// list no reaper knows, counted in P:messages, and the rescuer would never
// publish its run again. Refusing the move closes that window atomically.
//
// KEYS[1] -> P:queue:<queue>
// KEYS[2] -> P:processing:<consumer>
// KEYS[3] -> P:consumers
// ARGV[1] -> consumer id
// Returns the message, nil when the queue is empty, or 0 when the consumer
// is not registered.
var takeCmd = redis.NewScript(`
if not redis.call("ZSCORE", KEYS[3], ARGV[1]) then
	return 0
end
return redis.call("LMOVE", KEYS[1], KEYS[2], "LEFT", "RIGHT")`)

// dequeue moves the oldest message of queueKey into the consumer's
// processing list, waiting up to timeout. It returns "" when none came, and
// errReaped when the consumer must register again before taking any.
//
// Redis refuses blocking commands in scripts, so the wait is a BLMOVE of
// the queue onto its own head (it returns once the queue is not empty and
// leaves it unchanged), and the move is takeCmd.
func (r *rdb) dequeue(ctx context.Context, queueKey, consumer string, timeout time.Duration) (string, error) {
	err := r.client.BLMove(ctx, queueKey, queueKey, "LEFT", "LEFT", timeout).Err()
	if errors.Is(err, redis.Nil) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("dequeue from %s: %w", queueKey, err)
	}
	keys := []string{queueKey, r.cfg.processingPrefix() + consumer, r.cfg.consumersKey()}
	res, err := takeCmd.Run(ctx, r.client, keys, consumer).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil // another consumer took it first
	} else if err != nil {
		return "", fmt.Errorf("dequeue from %s: %w", queueKey, err)
	}
	if msg, ok := res.(string); ok {
		return msg, nil
	}
	return "", errReaped
}

// ackCmd removes a processed message from the consumer's processing list
// and uncounts it. A message already gone (Redis restarted, or the reaper
// took it back) is not uncounted twice.
//
// KEYS[1] -> P:processing:<consumer>
// KEYS[2] -> P:messages
// ARGV[1] -> message
// ARGV[2] -> run id ("" when not counted)
// Returns the number of messages removed (0 or 1).
var ackCmd = redis.NewScript(`
local n = redis.call("LREM", KEYS[1], 1, ARGV[1])
if n > 0 and ARGV[2] ~= "" then
	if redis.call("HINCRBY", KEYS[2], ARGV[2], -1) <= 0 then
		redis.call("HDEL", KEYS[2], ARGV[2])
	end
end
return n`)

func (r *rdb) ack(ctx context.Context, consumer, msg, runID string) error {
	keys := []string{r.cfg.processingPrefix() + consumer, r.cfg.messagesKey()}
	if err := ackCmd.Run(ctx, r.client, keys, msg, runID).Err(); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// requeueCmd hands a message back: from the consumer's processing list to
// the front of its queue (it was first in line), or to the delayed set
// when an ETA is given.
//
// KEYS[1] -> P:processing:<consumer>
// KEYS[2] -> P:queue:<queue>
// KEYS[3] -> P:queue:<queue>:delayed
// ARGV[1] -> message
// ARGV[2] -> ETA in ms since the epoch, or 0 for "now"
// Returns 1 if the message was handed back, 0 if it was not held.
var requeueCmd = redis.NewScript(`
if redis.call("LREM", KEYS[1], 1, ARGV[1]) == 0 then
	return 0
end
if tonumber(ARGV[2]) > 0 then
	redis.call("ZADD", KEYS[3], ARGV[2], ARGV[1])
else
	redis.call("LPUSH", KEYS[2], ARGV[1])
end
return 1`)

func (r *rdb) requeue(ctx context.Context, consumer, queueKey, msg string, eta time.Time) error {
	var at int64
	if !eta.IsZero() {
		at = ms(eta)
	}
	keys := []string{r.cfg.processingPrefix() + consumer, queueKey, delayedKey(queueKey)}
	if err := requeueCmd.Run(ctx, r.client, keys, msg, at).Err(); err != nil {
		return fmt.Errorf("requeue to %s: %w", queueKey, err)
	}
	return nil
}

// promoteCmd moves up to ARGV[2] due messages from a queue's delayed set to
// the end of the queue, in ETA order.
//
// KEYS[1] -> P:queue:<queue>:delayed
// KEYS[2] -> P:queue:<queue>
// ARGV[1] -> now in ms since the epoch
// ARGV[2] -> batch size
// Returns the number of messages moved.
var promoteCmd = redis.NewScript(`
local msgs = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
for _, m in ipairs(msgs) do
	redis.call("RPUSH", KEYS[2], m)
	redis.call("ZREM", KEYS[1], m)
end
return #msgs`)

func (r *rdb) promote(ctx context.Context, queueKey string, now time.Time, batch int) (int, error) {
	n, err := promoteCmd.Run(ctx, r.client, []string{delayedKey(queueKey), queueKey}, ms(now), batch).Int()
	if err != nil {
		return 0, fmt.Errorf("promote delayed messages of %s: %w", queueKey, err)
	}
	return n, nil
}

// heartbeatCmd registers a consumer or extends its registration.
//
// KEYS[1] -> P:consumers
// KEYS[2] -> P:consumers:queue
// KEYS[3] -> P:consumer:<consumer>
// ARGV[1] -> consumer id
// ARGV[2] -> deadline in ms since the epoch (now + ConsumerTTL)
// ARGV[3] -> the consumer's queue key
// ARGV[4] -> ConsumerTTL in ms
// Returns 1 if the consumer was not registered (first heartbeat, or it was
// reaped), 0 if it was.
var heartbeatCmd = redis.NewScript(`
local added = redis.call("ZADD", KEYS[1], ARGV[2], ARGV[1])
redis.call("HSET", KEYS[2], ARGV[1], ARGV[3])
redis.call("SET", KEYS[3], "alive", "PX", ARGV[4])
return added`)

// heartbeat registers consumer, or extends its registration; it reports
// whether the consumer had to be registered anew.
func (r *rdb) heartbeat(ctx context.Context, consumer, queueKey string, now time.Time, ttl time.Duration) (bool, error) {
	keys := []string{r.cfg.consumersKey(), r.cfg.consumerQueuesKey(), r.cfg.consumerKey(consumer)}
	n, err := heartbeatCmd.Run(ctx, r.client, keys, consumer, ms(now.Add(ttl)), queueKey, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("heartbeat of %s: %w", consumer, err)
	}
	return n == 1, nil
}

// reapCmd returns the messages of up to ARGV[3] consumers whose deadline
// passed to the front of their queues, oldest first, and forgets those
// consumers. Processing list keys are ARGV[2] .. consumer id.
//
// KEYS[1] -> P:consumers
// KEYS[2] -> P:consumers:queue
// ARGV[1] -> now in ms since the epoch
// ARGV[2] -> "P:processing:"
// ARGV[3] -> most consumers to reap in one call
// ARGV[4] -> "P:consumer:"
// Returns {consumers reaped, messages returned}.
var reapCmd = redis.NewScript(`
local dead = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[3]))
local moved = 0
for _, c in ipairs(dead) do
	local plist = ARGV[2] .. c
	local q = redis.call("HGET", KEYS[2], c)
	if q then
		local msgs = redis.call("LRANGE", plist, 0, -1)
		for i = #msgs, 1, -1 do
			redis.call("LPUSH", q, msgs[i])
		end
		moved = moved + #msgs
	end
	redis.call("DEL", plist, ARGV[4] .. c)
	redis.call("ZREM", KEYS[1], c)
	redis.call("HDEL", KEYS[2], c)
end
return {#dead, moved}`)

func (r *rdb) reap(ctx context.Context, now time.Time, limit int) (consumers, messages int, err error) {
	keys := []string{r.cfg.consumersKey(), r.cfg.consumerQueuesKey()}
	res, err := reapCmd.Run(ctx, r.client, keys, ms(now), r.cfg.processingPrefix(), limit, r.cfg.consumerKey("")).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("reap dead consumers: %w", err)
	}
	return int(res[0]), int(res[1]), nil
}

// deregisterCmd is a consumer's own graceful exit: its unacked messages go
// back to the front of its queue, oldest first, and it is forgotten.
//
// KEYS[1] -> P:processing:<consumer>
// KEYS[2] -> P:queue:<queue>
// KEYS[3] -> P:consumers
// KEYS[4] -> P:consumers:queue
// KEYS[5] -> P:consumer:<consumer>
// ARGV[1] -> consumer id
// Returns the number of messages handed back.
var deregisterCmd = redis.NewScript(`
local msgs = redis.call("LRANGE", KEYS[1], 0, -1)
for i = #msgs, 1, -1 do
	redis.call("LPUSH", KEYS[2], msgs[i])
end
redis.call("DEL", KEYS[1], KEYS[5])
redis.call("ZREM", KEYS[3], ARGV[1])
redis.call("HDEL", KEYS[4], ARGV[1])
return #msgs`)

func (r *rdb) deregister(ctx context.Context, consumer, queueKey string) (int, error) {
	keys := []string{r.cfg.processingPrefix() + consumer, queueKey, r.cfg.consumersKey(),
		r.cfg.consumerQueuesKey(), r.cfg.consumerKey(consumer)}
	n, err := deregisterCmd.Run(ctx, r.client, keys, consumer).Int()
	if err != nil {
		return 0, fmt.Errorf("deregister %s: %w", consumer, err)
	}
	return n, nil
}

// processing returns the messages in a consumer's processing list (read
// only: one command).
func (r *rdb) processing(ctx context.Context, consumer string) ([]string, error) {
	msgs, err := r.client.LRange(ctx, r.cfg.processingPrefix()+consumer, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list processing of %s: %w", consumer, err)
	}
	return msgs, nil
}

// messageCounts reports, for each run id, how many of its messages Redis
// holds (read only: one command).
func (r *rdb) messageCounts(ctx context.Context, runIDs []string) ([]int, error) {
	if len(runIDs) == 0 {
		return nil, nil
	}
	vals, err := r.client.HMGet(ctx, r.cfg.messagesKey(), runIDs...).Result()
	if err != nil {
		return nil, fmt.Errorf("count messages: %w", err)
	}
	out := make([]int, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i], _ = strconv.Atoi(s)
		}
	}
	return out, nil
}

// elect takes leadership name for holder for ttl if no one holds it
// (SET NX PX: one command). Returns whether holder is now the leader.
func (r *rdb) elect(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	ok, err := r.client.SetNX(ctx, r.cfg.leaderKey(name), holder, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("elect %s: %w", name, err)
	}
	return ok, nil
}

// reelectCmd extends a leadership while it is still ours.
//
// KEYS[1] -> P:leader:<name>
// ARGV[1] -> holder
// ARGV[2] -> ttl in ms
// Returns 1 if extended, 0 if someone else (or no one) holds it.
var reelectCmd = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

func (r *rdb) reelect(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	n, err := reelectCmd.Run(ctx, r.client, []string{r.cfg.leaderKey(name)}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("reelect %s: %w", name, err)
	}
	return n == 1, nil
}

// resignCmd gives up a leadership if it is still ours.
//
// KEYS[1] -> P:leader:<name>
// ARGV[1] -> holder
// Returns 1 if deleted, 0 if it was not ours.
var resignCmd = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

func (r *rdb) resign(ctx context.Context, name, holder string) error {
	if err := resignCmd.Run(ctx, r.client, []string{r.cfg.leaderKey(name)}, holder).Err(); err != nil {
		return fmt.Errorf("resign %s: %w", name, err)
	}
	return nil
}

// webhookAllowCmd counts one request against a sliding-window rate limit
// and admits it if fewer than ARGV[1] requests were admitted within the
// last ARGV[2] ms. It is a sliding log kept in time buckets ARGV[3] ms wide
// (a hash: bucket index → admitted requests), so memory is bounded by the
// number of buckets in a window, not by the limit. A bucket counts while
// any part of it is within the window, so the count never falls short:
// never more than the limit are admitted within any window, and a request
// waits at most one bucket longer than an exact log would make it.
// Refused requests are not counted, so a sender that keeps retrying gets in
// as soon as the window has room. The hash expires one window and one
// bucket after the last admitted request; buckets older than the window are
// deleted on each call. A call with another bucket width (the window was
// changed) starts the count over.
//
// Time is Redis's TIME unless ARGV[4] gives it: every replica then reads
// one clock, and a replica whose clock is off neither widens nor narrows
// the window.
//
// KEYS[1] -> P:webhook:rate:<key>
// ARGV[1] -> limit (requests per window, >= 1)
// ARGV[2] -> window in ms
// ARGV[3] -> bucket width in ms (>= 1)
// ARGV[4] -> now in ms since the epoch, or 0 for Redis's TIME
// Returns {1, 0} when admitted, or {0, retry} when refused, retry being the
// ms (>= 1) until the oldest counted requests leave the window and one more
// would be admitted.
var webhookAllowCmd = redis.NewScript(`
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local width = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now <= 0 then
	local t = redis.call("TIME")
	now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local w = redis.call("HGET", KEYS[1], "w")
if w and w ~= ARGV[3] then
	redis.call("DEL", KEYS[1])
end
local first = math.floor((now - window) / width)
local h = redis.call("HGETALL", KEYS[1])
local live, total = {}, 0
for i = 1, #h, 2 do
	if h[i] ~= "w" then
		local b = tonumber(h[i])
		if b < first then
			redis.call("HDEL", KEYS[1], h[i])
		else
			local n = tonumber(h[i + 1])
			total = total + n
			live[#live + 1] = {b, n}
		end
	end
end
if total < limit then
	redis.call("HINCRBY", KEYS[1], string.format("%d", math.floor(now / width)), 1)
	redis.call("HSET", KEYS[1], "w", ARGV[3])
	redis.call("PEXPIRE", KEYS[1], window + width)
	return {1, 0}
end
table.sort(live, function(x, y) return x[1] < y[1] end)
local at = now + window + width
for _, e in ipairs(live) do
	total = total - e[2]
	if total < limit then
		at = (e[1] + 1) * width + window
		break
	end
end
local retry = at - now
if retry < 1 then
	retry = 1
end
return {0, retry}`)

// webhookAllow runs webhookAllowCmd on key (a full Redis key); now is ms
// since the epoch, or 0 for Redis's TIME. It returns whether the request
// was admitted and, if not, the ms until one would be.
func webhookAllow(ctx context.Context, c redis.Scripter, key string, limit int, window, width, now int64) (bool, int64, error) {
	res, err := webhookAllowCmd.Run(ctx, c, []string{key}, limit, window, width, now).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("unexpected answer %v", res)
	}
	return res[0] == 1, res[1], nil
}

// webhookRememberCmd stores a value under a key for a time unless the key
// holds one already, and answers the value the key holds afterwards.
//
// KEYS[1]: the seen key. ARGV[1]: the value; ARGV[2]: the ttl in ms.
// Returns the stored value: ARGV[1] when the key was free.
var webhookRememberCmd = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if v then
	return v
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return ARGV[1]`)

// webhookForgetCmd deletes a seen key only while it holds the given value,
// so a forget never removes what another request remembered since.
//
// KEYS[1]: the seen key. ARGV[1]: the value. Returns 1 if deleted.
var webhookForgetCmd = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// webhookForget runs webhookForgetCmd on key (a full Redis key).
func webhookForget(ctx context.Context, c redis.Scripter, key, value string) error {
	return webhookForgetCmd.Run(ctx, c, []string{key}, value).Err()
}

// webhookRemember runs webhookRememberCmd on key (a full Redis key).
func webhookRemember(ctx context.Context, c redis.Scripter, key, value string, ttl time.Duration) (string, error) {
	return webhookRememberCmd.Run(ctx, c, []string{key}, value, ttl.Milliseconds()).Text()
}
