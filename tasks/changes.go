package tasks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// ChangeFeedPingIntervalDefault is how long a ChangeFeed subscription
// waits for a message before it pings Redis. Two silent intervals in a row
// (no message, no pong) count as a lost connection: a peer gone without
// closing its socket (a cut network, a frozen host) is noticed within
// about twice this, 1 s, while a closed connection is noticed at once.
const ChangeFeedPingIntervalDefault = 500 * time.Millisecond

// Reconnection backoff of a ChangeFeed subscription whose Redis is gone.
const (
	changeFeedBackoffMin = 100 * time.Millisecond
	changeFeedBackoffMax = time.Second
	// changeFeedSilentRedial is how many silent ping intervals in a row
	// make the subscription give up its connection for a new one.
	changeFeedSilentRedial = 4
)

// ChangeFeed is orcheo.ChangeFeed on Redis pub/sub: Publish is one PUBLISH
// of the workflow id on "<prefix>:changes", and each subscription holds
// one pub/sub connection of the client it was given. It keeps no key and
// no state in Redis, so a Redis restarted empty loses only the messages
// of the moment, which every subscriber learns of as a disconnection. It
// is safe for concurrent use.
//
// Pub/sub delivers at most once: a message published while a subscriber's
// connection is down never reaches it. That is why every (re)connection
// is reported as ChangeConnected, on which a subscriber forgets what it
// cached, and why the subscription watches its connection with pings
// instead of trusting a socket that may be dead without knowing it.
type ChangeFeed struct {
	client  redis.UniversalClient
	channel string
	logger  logrus.FieldLogger

	// PingInterval is ChangeFeedPingIntervalDefault unless set before the
	// first Subscribe (tests shorten it).
	PingInterval time.Duration
}

var _ orcheo.ChangeFeed = (*ChangeFeed)(nil)

// NewChangeFeed returns a feed on client (the process's one Redis client;
// the caller keeps it and closes it after the last subscription ended) on
// the channel "<prefix>:changes"; an empty prefix is PrefixDefault. A nil
// logger is logrus's standard one. It panics on a nil client or a prefix
// Config.Validate refuses (programmer errors).
func NewChangeFeed(client redis.UniversalClient, prefix string, logger logrus.FieldLogger) *ChangeFeed {
	if client == nil {
		panic("tasks: NewChangeFeed: nil Redis client")
	}
	if prefix == "" {
		prefix = PrefixDefault
	}
	if strings.ContainsAny(prefix, " \t\r\n{}") {
		panic(fmt.Sprintf("tasks: NewChangeFeed: Redis key prefix %q must not contain spaces or braces", prefix))
	}
	if logger == nil {
		logger = logrus.StandardLogger()
	}
	return &ChangeFeed{
		client: client, channel: prefix + ":changes",
		logger:       logger.WithField("component", "changes"),
		PingInterval: ChangeFeedPingIntervalDefault,
	}
}

// Publish sends workflowID to every subscriber of the channel, in this
// process and others.
func (f *ChangeFeed) Publish(ctx context.Context, workflowID string) error {
	if err := f.client.Publish(ctx, f.channel, workflowID).Err(); err != nil {
		return fmt.Errorf("publish change of workflow %s: %w", workflowID, err)
	}
	return nil
}

// Subscribe starts a subscription whose goroutine runs until ctx is done;
// see orcheo.ChangeFeed for the events. go-redis reconnects and
// resubscribes the connection itself when a read or write on it fails;
// the loop here only notices the failures (to report them) and provokes
// them with pings when the connection is silent.
func (f *ChangeFeed) Subscribe(ctx context.Context) <-chan orcheo.ChangeEvent {
	out := make(chan orcheo.ChangeEvent, 64)
	var current atomic.Pointer[redis.PubSub]
	current.Store(f.client.Subscribe(ctx, f.channel))
	go func() {
		// Close ends a Receive in progress at once (pool.ErrClosed).
		<-ctx.Done()
		_ = current.Load().Close()
	}()
	go f.run(ctx, &current, out)
	return out
}

// run is the subscription's receive loop. Only its goroutine touches up,
// silent and backoff, and replaces the subscription in current.
func (f *ChangeFeed) run(ctx context.Context, current *atomic.Pointer[redis.PubSub], out chan<- orcheo.ChangeEvent) {
	defer close(out)
	defer func() { _ = current.Load().Close() }()
	interval := f.PingInterval
	if interval <= 0 {
		interval = ChangeFeedPingIntervalDefault
	}
	var (
		up      bool // a ChangeConnected was sent since the last ChangeDisconnected
		silent  int  // receive timeouts in a row
		backoff = changeFeedBackoffMin
	)
	send := func(ev orcheo.ChangeEvent) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	down := func(err error) bool {
		if !up {
			return true
		}
		up = false
		f.logger.WithError(err).Warn("change feed disconnected; caches stop serving until it is back")
		return send(orcheo.ChangeEvent{Kind: orcheo.ChangeDisconnected})
	}
	connected := func(reason string) bool {
		if !up {
			f.logger.WithField("reason", reason).Debug("change feed connected")
		}
		up, silent, backoff = true, 0, changeFeedBackoffMin
		return send(orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
	}
	redial := func(old *redis.PubSub) {
		current.Store(f.client.Subscribe(ctx, f.channel))
		_ = old.Close()
		silent = 0
		if ctx.Err() != nil {
			// The closing goroutine may have closed old, not the new one.
			_ = current.Load().Close()
		}
	}
	for ctx.Err() == nil {
		sub := current.Load()
		msg, err := sub.ReceiveTimeout(ctx, interval)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if changeFeedTimeout(err) {
				// A live connection answers the ping within the next
				// interval; a dead one fails the write (go-redis then
				// reconnects) or stays silent.
				silent++
				if silent >= 2 && !down(errors.New("no answer to ping")) {
					return
				}
				if silent >= changeFeedSilentRedial {
					// A write into a dead TCP connection succeeds until the
					// kernel gives up (minutes), so go-redis would not
					// reconnect: start over on a new connection.
					redial(sub)
					continue
				}
				_ = sub.Ping(ctx)
				continue
			}
			if !down(err) {
				return
			}
			if !changeFeedSleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, changeFeedBackoffMax)
			continue
		}
		silent = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			// go-redis sends SUBSCRIBE again on every new connection:
			// this is the (re)connection, and what was published before
			// it is lost to us.
			if m.Kind == "subscribe" && !connected("subscribed") {
				return
			}
		case *redis.Pong:
			// The connection answers again after it was declared lost
			// for its silence, but whether its subscription held is
			// unknown: a new one reports itself (*redis.Subscription).
			if !up {
				redial(sub)
			}
		case *redis.Message:
			// Only a subscribed connection receives one; what came
			// before it while it was silent may be lost.
			if !up && !connected("message") {
				return
			}
			if !send(orcheo.ChangeEvent{Kind: orcheo.ChangeWorkflow, WorkflowID: m.Payload}) {
				return
			}
		}
	}
}

// changeFeedTimeout reports whether err is a read deadline passing (nothing to
// read), as opposed to a broken connection.
func changeFeedTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// changeFeedSleep sleeps d or until ctx is done, and reports whether it slept
// all of d.
func changeFeedSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
