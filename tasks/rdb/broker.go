package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// publishBatch is the most messages one publish script call carries, so a
// large batch does not hold Redis in one script for long.
const publishBatch = 500

// Message is one message to publish.
type Message struct {
	Queue string    // queue name
	Body  string    // the message (a machinery signature, JSON)
	RunID string    // the run it is for, counted in the queue's messages; "" for none
	ETA   time.Time // when it is due; zero (or past) is now
}

// publishCmd adds messages to one queue: each at its end, or at its front
// when ARGV[1] is "1" (in order, so the last of the call ends up first, as
// publishing them one by one would), or to its delayed set when it has an
// ETA; and counts each for its run.
//
// KEYS[1] -> P:{q}:queue
// KEYS[2] -> P:{q}:delayed
// KEYS[3] -> P:{q}:messages
// ARGV[1] -> "1" to add ready messages at the front of the queue, else "0"
// ARGV[2+3i], ARGV[3+3i], ARGV[4+3i] -> message i: its body, its run id
// ("" when not a run's), its ETA in ms since the epoch or 0 for "now"
// Returns the number of messages published.
var publishCmd = redis.NewScript(`
local n = 0
for i = 2, #ARGV, 3 do
	local msg, run, eta = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
	if eta > 0 then
		redis.call("ZADD", KEYS[2], eta, msg)
	elseif ARGV[1] == "1" then
		redis.call("LPUSH", KEYS[1], msg)
	else
		redis.call("RPUSH", KEYS[1], msg)
	end
	if run ~= "" then
		redis.call("HINCRBY", KEYS[3], run, 1)
	end
	n = n + 1
end
return n`)

// Publish adds msgs to their queues, at the end (or at the front when
// front is set: see publishCmd), in one round trip: one script call per
// queue (and per publishBatch messages) in one pipeline. A message whose
// ETA is after now goes to its queue's delayed set. errs[i] is msgs[i]'s
// error; all of one script call fail or succeed together.
func (r *RDB) Publish(ctx context.Context, now time.Time, front bool, msgs ...Message) (errs []error) {
	errs = make([]error, len(msgs))
	where := "0"
	if front {
		where = "1"
	}
	var calls []*scriptCall
	var members [][]int // calls[i] publishes msgs[members[i]...]
	open := map[string]int{}
	for i, m := range msgs {
		c, ok := open[m.Queue]
		if !ok || len(members[c]) >= publishBatch {
			c = len(calls)
			open[m.Queue] = c
			calls = append(calls, &scriptCall{script: publishCmd,
				keys: []string{r.QueueKey(m.Queue), r.DelayedKey(m.Queue), r.MessagesKey(m.Queue)},
				args: []any{where}})
			members = append(members, nil)
		}
		var eta int64
		if m.ETA.After(now) {
			eta = m.ETA.UnixMilli()
		}
		calls[c].args = append(calls[c].args, m.Body, m.RunID, eta)
		members[c] = append(members[c], i)
	}
	if len(calls) == 0 {
		return errs
	}
	r.runPipelined(ctx, calls)
	for c, call := range calls {
		if err := call.cmd.Err(); err != nil {
			for _, i := range members[c] {
				errs[i] = fmt.Errorf("publish to queue %s: %w", msgs[i].Queue, err)
			}
		}
	}
	return errs
}

// ErrReaped is Take's answer to a consumer the reaper has forgotten: it
// must register again (Heartbeat) before it takes any message.
var ErrReaped = errors.New("consumer is not registered (reaped)")

// takeCmd moves up to ARGV[2] of the oldest messages of a queue into a
// consumer's processing list, oldest first, but only while the consumer is
// registered. A consumer that was paused past its TTL has been reaped;
// were it to take messages and crash before its next heartbeat registered
// it again, they would sit in a list no reaper knows, counted in the
// queue's messages, and the rescuer would never publish their runs again.
// Refusing the move closes that window atomically.
//
// KEYS[1] -> P:{q}:queue
// KEYS[2] -> P:{q}:processing:<consumer>
// KEYS[3] -> P:{q}:consumers
// ARGV[1] -> consumer id
// ARGV[2] -> most messages to take (>= 1)
// Returns the messages taken (none when the queue is empty), or 0 when the
// consumer is not registered.
var takeCmd = redis.NewScript(`
if not redis.call("ZSCORE", KEYS[3], ARGV[1]) then
	return 0
end
local out = {}
for i = 1, tonumber(ARGV[2]) do
	local m = redis.call("LMOVE", KEYS[1], KEYS[2], "LEFT", "RIGHT")
	if not m then
		break
	end
	out[i] = m
end
return out`)

// Take moves up to n of the oldest messages of queue into consumer's
// processing list, in one script call, and returns them, oldest first:
// none when the queue is empty, ErrReaped when the consumer must register
// again first. It does not wait: see Wait.
func (r *RDB) Take(ctx context.Context, queue, consumer string, n int) ([]string, error) {
	if n < 1 {
		return nil, nil
	}
	keys := []string{r.QueueKey(queue), r.ProcessingKey(queue, consumer), r.ConsumersKey(queue)}
	res, err := takeCmd.Run(ctx, r.client, keys, consumer, n).Result()
	if err != nil {
		return nil, fmt.Errorf("take from queue %s: %w", queue, err)
	}
	list, ok := res.([]any)
	if !ok {
		return nil, ErrReaped
	}
	msgs := make([]string, 0, len(list))
	for _, m := range list {
		if s, ok := m.(string); ok {
			msgs = append(msgs, s)
		}
	}
	return msgs, nil
}

// Wait blocks until queue holds a message or timeout has passed, and
// reports whether it does. Redis refuses blocking commands in scripts, so
// the wait is a BLMOVE of the queue onto its own head: it returns once the
// queue is not empty and leaves it unchanged, and Take moves the messages.
func (r *RDB) Wait(ctx context.Context, queue string, timeout time.Duration) (bool, error) {
	key := r.QueueKey(queue)
	err := r.client.BLMove(ctx, key, key, "LEFT", "LEFT", timeout).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("wait on queue %s: %w", queue, err)
	}
	return true, nil
}

// Ack is one processed message to remove from a processing list.
type Ack struct {
	Body  string // the message
	RunID string // its run ("" when not counted)
	// Result, if set, is its task's terminal state for the result
	// backend, written in the ack's round trip (see Ack).
	Result *TaskResult
}

// TaskResult is a task's terminal state as the result backend keeps it:
// under ResultKeyPrefix + TaskUUID, expiring after TTL (0: never).
type TaskResult struct {
	TaskUUID string
	State    []byte
	TTL      time.Duration
}

// ErrResultsNotWritten wraps Ack's error when the messages were acked but
// a task state of the batch could not be written. States are
// informational (a run's status lives in the database), so the acker
// logs it and does not ack again.
var ErrResultsNotWritten = errors.New("task states not written")

// ackCmd removes processed messages from a consumer's processing list and
// uncounts them. A message already gone (Redis restarted, or the reaper
// took it back) is not uncounted twice.
//
// KEYS[1] -> P:{q}:processing:<consumer>
// KEYS[2] -> P:{q}:messages
// ARGV[1+2i], ARGV[2+2i] -> message i and its run id ("" when not counted)
// Returns the number of messages removed.
var ackCmd = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
	if redis.call("LREM", KEYS[1], 1, ARGV[i]) > 0 then
		n = n + 1
		local run = ARGV[i + 1]
		if run ~= "" and redis.call("HINCRBY", KEYS[2], run, -1) <= 0 then
			redis.call("HDEL", KEYS[2], run)
		end
	end
end
return n`)

// Ack removes acks' messages from consumer's processing list of queue in
// one script call, and returns how many were there. The task states of
// acks that carry one are SET in the same round trip (a pipeline: the
// states' keys are outside the queue's hash slot, so not in the script),
// which saves the result backend's own round trip per run. An error
// wrapping ErrResultsNotWritten means the acks were written and only some
// states were not.
func (r *RDB) Ack(ctx context.Context, queue, consumer string, acks ...Ack) (int, error) {
	if len(acks) == 0 {
		return 0, nil
	}
	args := make([]any, 0, 2*len(acks))
	states := 0
	for _, a := range acks {
		args = append(args, a.Body, a.RunID)
		if a.Result != nil {
			states++
		}
	}
	keys := []string{r.ProcessingKey(queue, consumer), r.MessagesKey(queue)}
	if states == 0 {
		n, err := ackCmd.Run(ctx, r.client, keys, args...).Int()
		if err != nil {
			return 0, fmt.Errorf("ack on queue %s: %w", queue, err)
		}
		return n, nil
	}
	call := &scriptCall{script: ackCmd, keys: keys, args: args}
	sets := make([]*redis.StatusCmd, 0, states)
	r.runPipelined(ctx, []*scriptCall{call}, func(p redis.Pipeliner) {
		for _, a := range acks {
			if a.Result != nil {
				sets = append(sets, p.Set(ctx, r.ResultKeyPrefix()+a.Result.TaskUUID, a.Result.State, a.Result.TTL))
			}
		}
	})
	n, err := call.cmd.Int()
	if err != nil {
		return 0, fmt.Errorf("ack on queue %s: %w", queue, err)
	}
	for _, set := range sets {
		if err := set.Err(); err != nil {
			return n, fmt.Errorf("ack on queue %s: %w: %w", queue, ErrResultsNotWritten, err)
		}
	}
	return n, nil
}

// requeueCmd hands a message back: from the consumer's processing list to
// the front of its queue (it was first in line), or to the delayed set
// when an ETA is given.
//
// KEYS[1] -> P:{q}:processing:<consumer>
// KEYS[2] -> P:{q}:queue
// KEYS[3] -> P:{q}:delayed
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

// Requeue hands msg back from consumer's processing list to the front of
// queue, or to its delayed set until eta when eta is not zero. It reports
// whether the message was held.
func (r *RDB) Requeue(ctx context.Context, queue, consumer, msg string, eta time.Time) (bool, error) {
	keys := []string{r.ProcessingKey(queue, consumer), r.QueueKey(queue), r.DelayedKey(queue)}
	n, err := requeueCmd.Run(ctx, r.client, keys, msg, unixMs(eta)).Int()
	if err != nil {
		return false, fmt.Errorf("requeue to queue %s: %w", queue, err)
	}
	return n == 1, nil
}

// promoteCmd moves up to ARGV[2] due messages from a queue's delayed set to
// the end of the queue, in ETA order.
//
// KEYS[1] -> P:{q}:delayed
// KEYS[2] -> P:{q}:queue
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

// Promote moves up to batch messages of queue that are due at now from its
// delayed set to its end, and returns how many.
func (r *RDB) Promote(ctx context.Context, queue string, now time.Time, batch int) (int, error) {
	n, err := promoteCmd.Run(ctx, r.client, []string{r.DelayedKey(queue), r.QueueKey(queue)}, now.UnixMilli(), batch).Int()
	if err != nil {
		return 0, fmt.Errorf("promote delayed messages of queue %s: %w", queue, err)
	}
	return n, nil
}

// heartbeatCmd registers a consumer or extends its registration.
//
// KEYS[1] -> P:{q}:consumers
// KEYS[2] -> P:{q}:consumer:<consumer>
// ARGV[1] -> consumer id
// ARGV[2] -> deadline in ms since the epoch (now + consumer TTL)
// ARGV[3] -> consumer TTL in ms
// Returns 1 if the consumer was not registered (first heartbeat, or it was
// reaped), 0 if it was.
var heartbeatCmd = redis.NewScript(`
local added = redis.call("ZADD", KEYS[1], ARGV[2], ARGV[1])
redis.call("SET", KEYS[2], "alive", "PX", ARGV[3])
return added`)

// Heartbeat registers consumer on queue until now + ttl, or extends its
// registration; it reports whether the consumer had to be registered
// anew.
func (r *RDB) Heartbeat(ctx context.Context, queue, consumer string, now time.Time, ttl time.Duration) (bool, error) {
	keys := []string{r.ConsumersKey(queue), r.ConsumerKey(queue, consumer)}
	n, err := heartbeatCmd.Run(ctx, r.client, keys, consumer, now.Add(ttl).UnixMilli(), ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("heartbeat of %s: %w", consumer, err)
	}
	return n == 1, nil
}

// reapCmd returns the messages of up to ARGV[3] consumers of a queue whose
// deadline passed to the front of the queue, oldest first, and forgets
// those consumers. Their keys are built from ARGV[2] and ARGV[4]; they
// carry the queue's hash tag, so they are in the slot of KEYS.
//
// KEYS[1] -> P:{q}:consumers
// KEYS[2] -> P:{q}:queue
// ARGV[1] -> now in ms since the epoch
// ARGV[2] -> "P:{q}:processing:"
// ARGV[3] -> most consumers to reap in one call
// ARGV[4] -> "P:{q}:consumer:"
// Returns {consumers reaped, messages returned}.
var reapCmd = redis.NewScript(`
local dead = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[3]))
local moved = 0
for _, c in ipairs(dead) do
	local plist = ARGV[2] .. c
	local msgs = redis.call("LRANGE", plist, 0, -1)
	for i = #msgs, 1, -1 do
		redis.call("LPUSH", KEYS[2], msgs[i])
	end
	moved = moved + #msgs
	redis.call("DEL", plist, ARGV[4] .. c)
	redis.call("ZREM", KEYS[1], c)
end
return {#dead, moved}`)

// Reap hands the messages of up to limit consumers of queue whose deadline
// passed at now back to the front of queue, and forgets those consumers.
func (r *RDB) Reap(ctx context.Context, queue string, now time.Time, limit int) (consumers, messages int, err error) {
	keys := []string{r.ConsumersKey(queue), r.QueueKey(queue)}
	res, err := reapCmd.Run(ctx, r.client, keys, now.UnixMilli(), r.processingPrefix(queue), limit, r.consumerPrefix(queue)).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("reap dead consumers of queue %s: %w", queue, err)
	}
	return int(res[0]), int(res[1]), nil
}

// deregisterCmd is a consumer's own graceful exit: its unacked messages go
// back to the front of its queue, oldest first, and it is forgotten.
//
// KEYS[1] -> P:{q}:processing:<consumer>
// KEYS[2] -> P:{q}:queue
// KEYS[3] -> P:{q}:consumers
// KEYS[4] -> P:{q}:consumer:<consumer>
// ARGV[1] -> consumer id
// Returns the number of messages handed back.
var deregisterCmd = redis.NewScript(`
local msgs = redis.call("LRANGE", KEYS[1], 0, -1)
for i = #msgs, 1, -1 do
	redis.call("LPUSH", KEYS[2], msgs[i])
end
redis.call("DEL", KEYS[1], KEYS[4])
redis.call("ZREM", KEYS[3], ARGV[1])
return #msgs`)

// Deregister hands consumer's unacked messages back to the front of queue
// and forgets the consumer; it returns how many messages went back.
func (r *RDB) Deregister(ctx context.Context, queue, consumer string) (int, error) {
	keys := []string{r.ProcessingKey(queue, consumer), r.QueueKey(queue), r.ConsumersKey(queue), r.ConsumerKey(queue, consumer)}
	n, err := deregisterCmd.Run(ctx, r.client, keys, consumer).Int()
	if err != nil {
		return 0, fmt.Errorf("deregister %s: %w", consumer, err)
	}
	return n, nil
}

// Processing returns the messages in consumer's processing list of queue
// (read only: one command).
func (r *RDB) Processing(ctx context.Context, queue, consumer string) ([]string, error) {
	msgs, err := r.client.LRange(ctx, r.ProcessingKey(queue, consumer), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list processing of %s: %w", consumer, err)
	}
	return msgs, nil
}

// Pending returns the ready messages of queue, oldest first, and its
// delayed ones in ETA order (read only).
func (r *RDB) Pending(ctx context.Context, queue string) (ready, delayed []string, err error) {
	var lr, zr *redis.StringSliceCmd
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		lr = p.LRange(ctx, r.QueueKey(queue), 0, -1)
		zr = p.ZRange(ctx, r.DelayedKey(queue), 0, -1)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list queue %s: %w", queue, err)
	}
	return lr.Val(), zr.Val(), nil
}

// MessageCounts reports, for each run, how many of its messages Redis
// holds: runIDs[i] is a run of queue queues[i]. One round trip (an HMGET
// per queue, pipelined).
func (r *RDB) MessageCounts(ctx context.Context, queues, runIDs []string) ([]int, error) {
	if len(queues) != len(runIDs) {
		return nil, fmt.Errorf("count messages: %d queues for %d runs", len(queues), len(runIDs))
	}
	out := make([]int, len(runIDs))
	if len(runIDs) == 0 {
		return out, nil
	}
	byQueue := map[string][]int{}
	var order []string
	for i, q := range queues {
		if _, ok := byQueue[q]; !ok {
			order = append(order, q)
		}
		byQueue[q] = append(byQueue[q], i)
	}
	cmds := make([]*redis.SliceCmd, len(order))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, q := range order {
			ids := make([]string, len(byQueue[q]))
			for k, i := range byQueue[q] {
				ids[k] = runIDs[i]
			}
			cmds[j] = p.HMGet(ctx, r.MessagesKey(q), ids...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count messages: %w", err)
	}
	for j, q := range order {
		for k, v := range cmds[j].Val() {
			if s, ok := v.(string); ok {
				out[byQueue[q][k]], _ = strconv.Atoi(s)
			}
		}
	}
	return out, nil
}

// QueueDepth returns how many messages wait on queue: ready, and delayed
// (an ETA not yet promoted). One round trip.
func (r *RDB) QueueDepth(ctx context.Context, queue string) (ready, delayed int64, err error) {
	var llen, zcard *redis.IntCmd
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		llen = p.LLen(ctx, r.QueueKey(queue))
		zcard = p.ZCard(ctx, r.DelayedKey(queue))
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("queue depth of %s: %w", queue, err)
	}
	return llen.Val(), zcard.Val(), nil
}

// ConsumersOnline counts the consumers of queues whose heartbeat deadline
// has not passed at now. One round trip.
func (r *RDB) ConsumersOnline(ctx context.Context, queues []string, now time.Time) (int64, error) {
	cmds := make([]*redis.IntCmd, len(queues))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range queues {
			cmds[i] = p.ZCount(ctx, r.ConsumersKey(q), strconv.FormatInt(now.UnixMilli(), 10), "+inf")
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count consumers online: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}
