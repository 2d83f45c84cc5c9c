package rdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The worker registry: each worker process's record, the index of online
// workers, the shutdown requests of operators and the control channel
// (keys.go lists them). Every registry key carries the hash tag
// "{workers}", so the scripts below touch one Cluster slot.

// ErrWorkerNameTaken is RegisterWorker's answer when another live worker
// process holds the name.
var ErrWorkerNameTaken = errors.New("worker name is held by another live worker")

// registryTag is the hash-tagged stem of the registry's keys.
func (r *RDB) registryTag() string { return r.prefix + ":{workers}" }

// WorkersKey is the sorted set of online worker names; score: the
// deadline (ms) past which a name that stopped beating is offline.
func (r *RDB) WorkersKey() string { return r.registryTag() + ":online" }

// workerPrefix + name is a worker's record.
func (r *RDB) workerPrefix() string { return r.registryTag() + ":worker:" }

// WorkerKey is the record of the worker process called name: a hash of
// "id" (the process's unique id) and "info" (its JSON report), with a TTL.
func (r *RDB) WorkerKey(name string) string { return r.workerPrefix() + name }

// ShutdownKey holds the id of the process called name that an operator
// asked to drain, until that process deregisters (or its TTL ends).
func (r *RDB) ShutdownKey(name string) string { return r.registryTag() + ":shutdown:" + name }

// ControlChannel is the pub/sub channel of operator control: a message is
// the id of a worker process asked to drain.
func (r *RDB) ControlChannel() string { return r.prefix + ":control" }

// registerWorkerCmd writes a worker's record and renews its place among
// the online workers, dropping names whose deadline passed, unless another
// process holds the name.
//
// KEYS[1] -> P:{workers}:worker:<name>
// KEYS[2] -> P:{workers}:online
// KEYS[3] -> P:{workers}:shutdown:<name>
// ARGV[1] -> name
// ARGV[2] -> the process's id
// ARGV[3] -> the record (JSON)
// ARGV[4] -> the record's TTL, ms
// ARGV[5] -> now, ms since the epoch
// Returns -1 if the name is held by another id; else 1 when an operator
// asked this process to drain, 0 otherwise.
var registerWorkerCmd = redis.NewScript(`
local owner = redis.call("HGET", KEYS[1], "id")
if owner and owner ~= ARGV[2] then
	return -1
end
redis.call("HSET", KEYS[1], "id", ARGV[2], "info", ARGV[3])
redis.call("PEXPIRE", KEYS[1], ARGV[4])
redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", "(" .. ARGV[5])
redis.call("ZADD", KEYS[2], tonumber(ARGV[5]) + tonumber(ARGV[4]), ARGV[1])
if redis.call("GET", KEYS[3]) == ARGV[2] then
	return 1
end
return 0`)

// RegisterWorker writes the record info of the process id called name,
// valid for ttl from now, and reports whether an operator asked it to
// drain (RequestShutdown). It returns ErrWorkerNameTaken, writing nothing,
// while another process's record holds the name.
func (r *RDB) RegisterWorker(ctx context.Context, name, id string, info []byte, now time.Time, ttl time.Duration) (shutdown bool, err error) {
	keys := []string{r.WorkerKey(name), r.WorkersKey(), r.ShutdownKey(name)}
	n, err := registerWorkerCmd.Run(ctx, r.client, keys, name, id, info, ttl.Milliseconds(), now.UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("register worker %s: %w", name, err)
	}
	if n < 0 {
		return false, ErrWorkerNameTaken
	}
	return n == 1, nil
}

// deregisterWorkerCmd removes a worker's record, index entry and shutdown
// request, if the record is the process's own.
//
// KEYS[1] -> P:{workers}:worker:<name>
// KEYS[2] -> P:{workers}:online
// KEYS[3] -> P:{workers}:shutdown:<name>
// ARGV[1] -> name
// ARGV[2] -> the process's id
// Returns 1 if it removed the record, 0 if it was not the process's.
var deregisterWorkerCmd = redis.NewScript(`
if redis.call("HGET", KEYS[1], "id") ~= ARGV[2] then
	return 0
end
redis.call("DEL", KEYS[1])
redis.call("ZREM", KEYS[2], ARGV[1])
if redis.call("GET", KEYS[3]) == ARGV[2] then
	redis.call("DEL", KEYS[3])
end
return 1`)

// DeregisterWorker removes the record of the process id called name (a
// clean stop) and any shutdown request made of it. Another process's
// record under that name is left alone.
func (r *RDB) DeregisterWorker(ctx context.Context, name, id string) error {
	keys := []string{r.WorkerKey(name), r.WorkersKey(), r.ShutdownKey(name)}
	if err := deregisterWorkerCmd.Run(ctx, r.client, keys, name, id).Err(); err != nil {
		return fmt.Errorf("deregister worker %s: %w", name, err)
	}
	return nil
}

// onlineWorkersCmd returns the ids and records of up to ARGV[2] workers
// whose deadline has not passed, by name; a name whose record expired is
// skipped.
//
// KEYS[1] -> P:{workers}:online
// ARGV[1] -> now, ms since the epoch
// ARGV[2] -> most workers returned
// ARGV[3] -> "P:{workers}:worker:"
// Returns {name, id, info, name, id, info, …}.
var onlineWorkersCmd = redis.NewScript(`
local names = redis.call("ZRANGEBYSCORE", KEYS[1], ARGV[1], "+inf", "LIMIT", 0, tonumber(ARGV[2]))
table.sort(names)
local out = {}
for _, n in ipairs(names) do
	local rec = redis.call("HMGET", ARGV[3] .. n, "id", "info")
	if rec[1] and rec[2] then
		table.insert(out, n)
		table.insert(out, rec[1])
		table.insert(out, rec[2])
	end
end
return out`)

// WorkerRecord is a worker's entry in the registry.
type WorkerRecord struct {
	Name string
	ID   string
	Info []byte // the JSON the worker wrote
}

// OnlineWorkers returns up to limit records of the workers online at now,
// by name, in one round trip.
func (r *RDB) OnlineWorkers(ctx context.Context, now time.Time, limit int) ([]WorkerRecord, error) {
	vals, err := onlineWorkersCmd.Run(ctx, r.client, []string{r.WorkersKey()},
		now.UnixMilli(), limit, r.workerPrefix()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("list online workers: %w", err)
	}
	out := make([]WorkerRecord, 0, len(vals)/3)
	for i := 0; i+2 < len(vals); i += 3 {
		out = append(out, WorkerRecord{Name: vals[i], ID: vals[i+1], Info: []byte(vals[i+2])})
	}
	return out, nil
}

// requestShutdownCmd records, for each worker named whose record still
// holds the given id, that an operator asked it to drain, and announces
// the id on the control channel.
//
// KEYS     -> P:{workers}:worker:<name>, P:{workers}:shutdown:<name>, … (pairs)
// ARGV[1]  -> the control channel
// ARGV[2]  -> how long a request is kept, ms
// ARGV[3…] -> the id of each worker, in the order of KEYS' pairs
// Returns how many workers it told.
var requestShutdownCmd = redis.NewScript(`
local n = 0
for i = 3, #ARGV do
	local k = (i - 3) * 2 + 1
	if redis.call("HGET", KEYS[k], "id") == ARGV[i] then
		redis.call("SET", KEYS[k + 1], ARGV[i], "PX", ARGV[2])
		redis.call("PUBLISH", ARGV[1], ARGV[i])
		n = n + 1
	end
end
return n`)

// RequestShutdown asks the worker processes ids (name → id, as
// OnlineWorkers reported them) to drain: a shutdown request each checks on
// its heartbeat, kept for keep, and a notice on ControlChannel that it
// hears at once. A name now held by another process is not told. Returns
// how many were told.
func (r *RDB) RequestShutdown(ctx context.Context, ids map[string]string, keep time.Duration) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	keys := make([]string, 0, 2*len(ids))
	args := []any{r.ControlChannel(), keep.Milliseconds()}
	for name, id := range ids {
		keys = append(keys, r.WorkerKey(name), r.ShutdownKey(name))
		args = append(args, id)
	}
	n, err := requestShutdownCmd.Run(ctx, r.client, keys, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("request worker shutdown: %w", err)
	}
	return n, nil
}

// DelayedMessages returns up to limit messages of queue's delayed set,
// soonest first, with their due times.
func (r *RDB) DelayedMessages(ctx context.Context, queue string, limit int) ([]string, []time.Time, error) {
	zs, err := r.client.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: r.DelayedKey(queue), Start: "-inf", Stop: "+inf", ByScore: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("read delayed messages of %s: %w", queue, err)
	}
	msgs, due := make([]string, len(zs)), make([]time.Time, len(zs))
	for i, z := range zs {
		msgs[i], _ = z.Member.(string)
		due[i] = time.UnixMilli(int64(z.Score))
	}
	return msgs, due, nil
}
