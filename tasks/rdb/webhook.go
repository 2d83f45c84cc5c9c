package rdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

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

// WebhookAllow runs webhookAllowCmd on the window of guard key key; now
// is ms since the epoch, or 0 for Redis's TIME. It returns whether the
// request was admitted and, if not, the ms until one would be.
func (r *RDB) WebhookAllow(ctx context.Context, key string, limit int, window, width, now int64) (bool, int64, error) {
	res, err := webhookAllowCmd.Run(ctx, r.client, []string{r.WebhookRateKey(key)}, limit, window, width, now).Int64Slice()
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

// WebhookRemember runs webhookRememberCmd on the seen key of guard key
// key: it stores value for ttl unless the key holds a value, and returns
// the value held afterwards.
func (r *RDB) WebhookRemember(ctx context.Context, key, value string, ttl time.Duration) (string, error) {
	return webhookRememberCmd.Run(ctx, r.client, []string{r.WebhookSeenKey(key)}, value, ttl.Milliseconds()).Text()
}

// WebhookForget runs webhookForgetCmd on the seen key of guard key key.
func (r *RDB) WebhookForget(ctx context.Context, key, value string) error {
	return webhookForgetCmd.Run(ctx, r.client, []string{r.WebhookSeenKey(key)}, value).Err()
}
