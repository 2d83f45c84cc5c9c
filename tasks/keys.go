package tasks

import "github.com/orcheo/orcheo"

// Every Redis key orcheo uses is built here, under Config.Prefix ("P"
// below), so that one prefix isolates a deployment (or a test package):
//
//	P:queue:<queue>             list    messages ready to deliver, oldest first
//	P:queue:<queue>:delayed     zset    messages with an ETA (score: ms since epoch)
//	P:processing:<consumer>     list    messages a consumer took and has not acked
//	P:consumers                 zset    consumer ids; score: heartbeat deadline, ms
//	P:consumers:queue           hash    consumer id → its queue key
//	P:consumer:<consumer>       string  "alive" with a TTL of ConsumerTTL, for operators
//	P:messages                  hash    run id → messages of that run held in Redis
//	P:leader:<name>             string  holder of a leadership, with a TTL
//	P:task:<uuid>               hash    machinery's task state (result backend)
//	P:webhook:rate:<key>        hash    rate-limit window: time bucket → requests, "w" → bucket width (ms)
//	P:webhook:seen:<key>        string  "1", with a TTL: a webhook delivery or signature already seen
//
// A consumer is one worker process's fetcher on one queue:
// "<worker id>:<queue>".

// queueKey is the Redis list of a queue's messages.
func (c *Config) queueKey(queue string) string {
	if queue == "" {
		queue = orcheo.DefaultQueue
	}
	return c.Prefix + ":queue:" + queue
}

// delayedKey is the sorted set of a queue's messages published with an
// ETA. It takes the queue's key (a message's RoutingKey).
func delayedKey(queueKey string) string { return queueKey + ":delayed" }

// processingPrefix + consumer id is a consumer's processing list. The
// reaper script builds dead consumers' keys from it.
func (c *Config) processingPrefix() string { return c.Prefix + ":processing:" }

// consumersKey is the registry of consumers and their heartbeat deadlines.
func (c *Config) consumersKey() string { return c.Prefix + ":consumers" }

// consumerQueuesKey maps each consumer to the queue its messages go back to.
func (c *Config) consumerQueuesKey() string { return c.Prefix + ":consumers:queue" }

// consumerKey is a consumer's heartbeat key (expires when it stops beating).
func (c *Config) consumerKey(consumer string) string { return c.Prefix + ":consumer:" + consumer }

// messagesKey counts, per run id, the messages of that run anywhere in
// Redis (ready, delayed or processing).
func (c *Config) messagesKey() string { return c.Prefix + ":messages" }

// leaderKey is the lease of a leadership (the rescuer's).
func (c *Config) leaderKey(name string) string { return c.Prefix + ":leader:" + name }

// taskKey is the key machinery's result backend stores a task's state
// under: the signature UUID, which we put in our namespace.
func (c *Config) taskKey(id string) string { return c.Prefix + ":task:" + id }

// webhookRateKey is the rate-limit window of a guard key (webhookKey).
func (c *Config) webhookRateKey(key string) string { return c.Prefix + ":webhook:rate:" + key }

// webhookSeenKey remembers a delivery or signature (webhookKey) for replays.
func (c *Config) webhookSeenKey(key string) string { return c.Prefix + ":webhook:seen:" + key }
