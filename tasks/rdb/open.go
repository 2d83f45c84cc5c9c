package rdb

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client options every process uses.
const (
	// OpenMaxRetries is one retry, not go-redis's three: callers back off
	// themselves while Redis is down, and the API answers its client
	// instead of waiting out go-redis's retries.
	OpenMaxRetries = 1
	// OpenDialTimeout fails a dial to a Redis that is down within 2 s.
	OpenDialTimeout = 2 * time.Second
)

// Open returns the process's one Redis client for rawURL
// (redis://[[user]:password@]host:port[/db], or rediss:// for TLS). It does
// not connect: the first command does. The caller owns the client and
// closes it after every user of it has stopped. Errors never quote the
// password.
func Open(rawURL string) (redis.UniversalClient, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %s", redactURLErr(err, rawURL))
	}
	opt.MaxRetries = OpenMaxRetries
	opt.DialTimeout = OpenDialTimeout
	return redis.NewClient(opt), nil
}

// redactURLErr is err's message without the password that rawURL holds
// (a parse error may quote the URL).
func redactURLErr(err error, rawURL string) string {
	msg := err.Error()
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}
