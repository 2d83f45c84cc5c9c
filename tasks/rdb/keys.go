package rdb

// Every Redis key orcheo uses is built here, under the prefix ("P" below)
// that isolates a deployment (or a test):
//
//	P:{<queue>}:queue                   list    messages ready to deliver, oldest first
//	P:{<queue>}:delayed                 zset    messages with an ETA (score: ms since epoch)
//	P:{<queue>}:processing:<consumer>   list    messages a consumer took and has not acked
//	P:{<queue>}:consumers               zset    the queue's consumer ids; score: heartbeat deadline, ms
//	P:{<queue>}:consumer:<consumer>     string  "alive" with a TTL of the consumer TTL, for operators
//	P:{<queue>}:messages                hash    run id → messages of that run held under the queue's keys
//	P:result:<task uuid>                string  a task's terminal state (the result backend), with a TTL
//	P:webhook:rate:<key>                hash    rate-limit window: time bucket → requests, "w" → bucket width (ms)
//	P:webhook:seen:<key>                string  a webhook delivery or signature already seen, with a TTL
//	P:cancel                            channel pub/sub: ids of runs an operator cancelled
//	P:leader:<name>                     string  the holder of a leadership, with a TTL (leader.go)
//	P:changes                           channel pub/sub: ids of workflows changed, for API caches (tasks/changes.go)
//	P:{workers}:online                  zset    online worker names; score: deadline, ms (registry.go)
//	P:{workers}:worker:<name>           hash    a worker process's record: "id", "info" (JSON), with a TTL
//	P:{workers}:shutdown:<name>         string  id of the process called <name> an operator asked to drain
//	P:control                           channel pub/sub: ids of worker processes asked to drain
//
// "{<queue>}" is a Redis Cluster hash
// tag: only the text between the braces is hashed, so every key of a
// queue is in one slot and each script below, which touches the keys of
// one queue, runs on one node. Queue names never hold braces (orcheo's
// queue-name rule), nor does the prefix (New). A consumer is one worker
// process's fetcher on one queue: "<worker id>:<queue>".
//
// Upgrade note: keys before the hash tags were P:queue:<queue>,
// P:processing:<consumer>, P:consumers and one P:messages for every
// queue. A run whose message is still under an old key counts zero
// messages under the new keys, so the rescuer publishes it again once it
// has been pending for its re-enqueue delay; the old keys are left to be
// deleted by hand.

// queueTag is the hash-tagged stem of every key of queue.
func (r *RDB) queueTag(queue string) string { return r.prefix + ":{" + queue + "}" }

// QueueKey is the list of queue's ready messages.
func (r *RDB) QueueKey(queue string) string { return r.queueTag(queue) + ":queue" }

// DelayedKey is the sorted set of queue's messages published with an ETA.
func (r *RDB) DelayedKey(queue string) string { return r.queueTag(queue) + ":delayed" }

// processingPrefix + consumer id is a processing list of queue; the reaper
// script builds dead consumers' keys from it.
func (r *RDB) processingPrefix(queue string) string { return r.queueTag(queue) + ":processing:" }

// ProcessingKey is the list of the messages consumer took from queue and
// has not acked.
func (r *RDB) ProcessingKey(queue, consumer string) string {
	return r.processingPrefix(queue) + consumer
}

// ConsumersKey is the registry of queue's consumers and their heartbeat
// deadlines.
func (r *RDB) ConsumersKey(queue string) string { return r.queueTag(queue) + ":consumers" }

// consumerPrefix + consumer id is a consumer's heartbeat key.
func (r *RDB) consumerPrefix(queue string) string { return r.queueTag(queue) + ":consumer:" }

// ConsumerKey is a consumer's heartbeat key (expires when it stops beating).
func (r *RDB) ConsumerKey(queue, consumer string) string { return r.consumerPrefix(queue) + consumer }

// MessagesKey counts, per run id, the messages of that run held under
// queue's keys (ready, delayed or processing). A run's messages are always
// on its own queue, so this count is all of them.
func (r *RDB) MessagesKey(queue string) string { return r.queueTag(queue) + ":messages" }

// ResultKeyPrefix + a task's UUID is the key the result backend keeps the
// task's terminal state under.
func (r *RDB) ResultKeyPrefix() string { return r.prefix + ":result:" }

// WebhookRateKey is the rate-limit window of a webhook guard key.
func (r *RDB) WebhookRateKey(key string) string { return r.prefix + ":webhook:rate:" + key }

// WebhookSeenKey remembers a webhook delivery or signature, for replays.
func (r *RDB) WebhookSeenKey(key string) string { return r.prefix + ":webhook:seen:" + key }

// CancelChannel is the pub/sub channel of operator cancels; a message is
// a run id.
func (r *RDB) CancelChannel() string { return r.prefix + ":cancel" }
