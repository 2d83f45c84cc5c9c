// Package rdb is orcheo's Redis layer: every key (keys.go), every Lua
// script and the typed methods that run them, on one client that the
// process builds once (Open) and hands to every user: the broker, the
// queue, the cancel notifier and listener, the webhook guard, the result
// backend and the elector (as asynq's internal/rdb is shared by its
// server's components).
//
// It knows only keys, scripts and plain values (queue names, consumer ids,
// message bodies, run ids, times): nothing of the workers that use it, so
// it imports none of them.
//
// Every change to several keys is one script, so it happens entirely or
// not at all, and every key a script touches carries its queue's hash tag
// ("{queue}", keys.go), so the script touches one hash slot and runs on
// Redis Cluster as on one server. Times are passed in (ms since the epoch)
// from the caller's clock, so scripts behave the same on redis-server and
// miniredis; the one exception is the webhook rate limit, which reads
// Redis's TIME so that API replicas with skewed clocks share one window.
package rdb

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RDB runs orcheo's scripts and commands on one client, under one key
// prefix. It is safe for concurrent use and does not own the client:
// whoever built the client closes it.
type RDB struct {
	client redis.UniversalClient
	prefix string
}

// New returns an RDB on client with its keys under prefix, which must be
// non-empty and free of spaces and braces (a brace would break the hash
// tags). It panics otherwise: the callers validate their configuration.
func New(client redis.UniversalClient, prefix string) *RDB {
	if client == nil {
		panic("rdb: New: nil client")
	}
	if prefix == "" || strings.ContainsAny(prefix, " \t\r\n{}") {
		panic("rdb: New: the key prefix must be non-empty, without spaces or braces: " + prefix)
	}
	return &RDB{client: client, prefix: prefix}
}

// Client is the client r runs on.
func (r *RDB) Client() redis.UniversalClient { return r.client }

// Prefix is the key prefix of r.
func (r *RDB) Prefix() string { return r.prefix }

// Ping reports whether Redis answers.
func (r *RDB) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

// unixMs is t in ms since the epoch, or 0 for the zero time ("now").
func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// scriptCall is one script invocation of a pipelined batch (runPipelined).
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd // its reply, once run
}

// runPipelined runs calls in one round trip (EVALSHA of each in a
// pipeline; go-redis's Cluster client splits a pipeline by slot). A script
// Redis does not know yet (NOSCRIPT: the first call after a Redis restart)
// is sent again in full with EVAL, in a second round trip. Each call's
// reply or error is in its cmd. Each of also, if any, adds plain commands
// to the first round trip, after the scripts; their replies are in the
// commands they made.
func (r *RDB) runPipelined(ctx context.Context, calls []*scriptCall, also ...func(redis.Pipeliner)) {
	exec := func(calls []*scriptCall, full bool, also []func(redis.Pipeliner)) {
		pipe := r.client.Pipeline()
		for _, c := range calls {
			if full {
				c.cmd = c.script.Eval(ctx, pipe, c.keys, c.args...)
			} else {
				c.cmd = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
			}
		}
		for _, add := range also {
			add(pipe)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			// A script's own error is in its cmd. Any other (no
			// connection, a reply cut short) may have left cmds without
			// one: all count as failed, as some may have been.
			var rerr redis.Error
			if !errors.As(err, &rerr) {
				for _, c := range calls {
					c.cmd.SetErr(err)
				}
			}
		}
	}
	exec(calls, false, also)
	var again []*scriptCall
	for _, c := range calls {
		if err := c.cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			again = append(again, c)
		}
	}
	if len(again) > 0 {
		exec(again, true, nil)
	}
}
