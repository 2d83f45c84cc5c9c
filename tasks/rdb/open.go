package rdb

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strconv"
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
	// SentinelScheme is the scheme of a Sentinel-managed primary's URL.
	SentinelScheme = "redis+sentinel"
	// sentinelPortDefault is Sentinel's port when an address has none.
	sentinelPortDefault = "26379"
)

// Open returns the process's one Redis client for rawURL, one of
//
//	redis://[[user]:password@]host:port[/db]  (rediss:// for TLS)
//	redis+sentinel://[[user]:password@]host1:port1[,host2:port2…]/<master>[/db][?sentinel_password=…]
//
// The second is a primary managed by Redis Sentinel: the client asks the
// sentinels (port 26379 when an address has none) where the primary of
// <master> is, and asks again after a failover, so commands (BLMOVE and
// pub/sub included) reconnect to the promoted replica. The password in
// the userinfo is the primary's; sentinel_password (and
// sentinel_username) are the sentinels' own, if they require one.
//
// Open does not connect: the first command does. The caller owns the
// client and closes it after every user of it has stopped. Errors never
// quote a password. The pool is go-redis's default, 10 connections per
// GOMAXPROCS; a client that blocking callers share is OpenBlocking's.
func Open(rawURL string) (redis.UniversalClient, error) { return open(rawURL, 0) }

// OpenBlocking is Open for a client shared by blocking callers that each
// may hold a connection for the length of their wait (a worker's
// consumers, one per queue, each hold one in BLMOVE for up to a second
// while their queue is empty): its pool is the default (or a redis://
// URL's pool_size) plus one per blocking caller, so idle consumers never
// leave acks, heartbeats and takes waiting for a connection.
func OpenBlocking(rawURL string, blocking int) (redis.UniversalClient, error) {
	return open(rawURL, max(blocking, 0))
}

// poolSize is the pool for blocking callers on top of base, the URL's
// pool_size or 0 for go-redis's default (10 per GOMAXPROCS); 0 when there
// are none, which leaves go-redis's choice alone.
func poolSize(base, blocking int) int {
	if blocking == 0 {
		return base
	}
	if base == 0 {
		base = 10 * runtime.GOMAXPROCS(0)
	}
	return base + blocking
}

// open is Open with room in the pool for blocking callers.
func open(rawURL string, blocking int) (redis.UniversalClient, error) {
	if IsSentinelURL(rawURL) {
		opt, err := parseSentinelURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %s", redactURLErr(err, rawURL))
		}
		opt.MaxRetries = OpenMaxRetries
		opt.DialTimeout = OpenDialTimeout
		opt.PoolSize = poolSize(opt.PoolSize, blocking)
		return redis.NewFailoverClient(opt), nil
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %s", redactURLErr(err, rawURL))
	}
	opt.MaxRetries = OpenMaxRetries
	opt.DialTimeout = OpenDialTimeout
	opt.PoolSize = poolSize(opt.PoolSize, blocking)
	return redis.NewClient(opt), nil
}

// CheckURL reports whether Open accepts rawURL, without making a client.
func CheckURL(rawURL string) error {
	var err error
	if IsSentinelURL(rawURL) {
		_, err = parseSentinelURL(rawURL)
	} else {
		_, err = redis.ParseURL(rawURL)
	}
	if err != nil {
		return fmt.Errorf("redis url: %s", redactURLErr(err, rawURL))
	}
	return nil
}

// IsSentinelURL reports whether rawURL names a Sentinel-managed primary.
func IsSentinelURL(rawURL string) bool {
	return strings.HasPrefix(strings.ToLower(rawURL), SentinelScheme+"://")
}

// SentinelURL builds the URL Open reads for the primary named master
// behind the sentinels at addrs (host:port each), with the password and
// database of base (a redis:// or redis+sentinel:// URL, or ""). When base
// is a redis+sentinel:// URL, an empty master or addrs is taken from it.
// It is how ORCHEO_REDIS_SENTINELS and ORCHEO_REDIS_SENTINEL_MASTER become
// one URL.
func SentinelURL(addrs []string, master, base string) (string, error) {
	var user *url.Userinfo
	db := 0
	query := ""
	switch {
	case base == "":
	case IsSentinelURL(base):
		opt, err := parseSentinelURL(base)
		if err != nil {
			return "", fmt.Errorf("redis url: %s", redactURLErr(err, base))
		}
		user, db = userinfo(opt.Username, opt.Password), opt.DB
		if u, err := url.Parse(placeholderURL(base)); err == nil {
			query = u.RawQuery
		}
		if len(addrs) == 0 {
			addrs = opt.SentinelAddrs
		}
		if master == "" {
			master = opt.MasterName
		}
	default:
		opt, err := redis.ParseURL(base)
		if err != nil {
			return "", fmt.Errorf("redis url: %s", redactURLErr(err, base))
		}
		user, db = userinfo(opt.Username, opt.Password), opt.DB
	}
	if len(addrs) == 0 {
		return "", errors.New("no sentinel address")
	}
	if master == "" || strings.ContainsAny(master, "/?#@ ") {
		return "", fmt.Errorf("invalid sentinel master name %q", master)
	}
	for _, a := range addrs {
		if err := checkSentinelAddr(a); err != nil {
			return "", err
		}
	}
	u := url.URL{Scheme: SentinelScheme, User: user, Host: strings.Join(addrs, ","),
		Path: "/" + master + "/" + strconv.Itoa(db), RawQuery: query}
	return u.String(), nil
}

func userinfo(name, password string) *url.Userinfo {
	switch {
	case password != "":
		return url.UserPassword(name, password)
	case name != "":
		return url.User(name)
	}
	return nil
}

// placeholderURL is rawURL (redis+sentinel://) with its list of hosts,
// which net/url cannot parse (several IPv6 literals), replaced by one.
func placeholderURL(rawURL string) string {
	user, _, rest := splitSentinelURL(rawURL)
	return "redis://" + user + "sentinels" + rest
}

// splitSentinelURL splits redis+sentinel://userinfo@hosts/rest into its
// userinfo (with the @), the hosts, and the rest (from the first / or ?).
func splitSentinelURL(rawURL string) (user, hosts, rest string) {
	s := rawURL[len(SentinelScheme)+3:]
	if i := strings.IndexAny(s, "/?"); i >= 0 {
		s, rest = s[:i], s[i:]
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		user, s = s[:i+1], s[i+1:]
	}
	return user, s, rest
}

// parseSentinelURL reads a redis+sentinel:// URL (see Open).
func parseSentinelURL(rawURL string) (*redis.FailoverOptions, error) {
	_, hosts, _ := splitSentinelURL(rawURL)
	u, err := url.Parse(placeholderURL(rawURL))
	if err != nil {
		return nil, err
	}
	opt := &redis.FailoverOptions{}
	if u.User != nil {
		opt.Username = u.User.Username()
		opt.Password, _ = u.User.Password()
	}
	for _, a := range strings.Split(hosts, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(strings.Trim(a, "[]"), sentinelPortDefault)
		}
		if err := checkSentinelAddr(a); err != nil {
			return nil, err
		}
		opt.SentinelAddrs = append(opt.SentinelAddrs, a)
	}
	if len(opt.SentinelAddrs) == 0 {
		return nil, errors.New("redis+sentinel: no sentinel address")
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) > 2 || parts[0] == "" {
		return nil, errors.New("redis+sentinel: the path must be /<master name>[/<db>]")
	}
	opt.MasterName = parts[0]
	if len(parts) == 2 {
		if opt.DB, err = strconv.Atoi(parts[1]); err != nil || opt.DB < 0 {
			return nil, fmt.Errorf("redis+sentinel: invalid database number %q", parts[1])
		}
	}
	for k, v := range u.Query() {
		switch k {
		case "sentinel_password":
			opt.SentinelPassword = v[len(v)-1]
		case "sentinel_username":
			opt.SentinelUsername = v[len(v)-1]
		default:
			return nil, fmt.Errorf("redis+sentinel: unknown option %q", k)
		}
	}
	return opt, nil
}

// checkSentinelAddr accepts host:port with a numeric port.
func checkSentinelAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("redis+sentinel: invalid sentinel address %q: want host:port", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("redis+sentinel: invalid port in sentinel address %q", a)
	}
	return nil
}

// redactURLErr is err's message without the passwords that rawURL holds
// (a parse error may quote the URL), found without parsing it: it may not
// parse.
func redactURLErr(err error, rawURL string) string {
	msg := err.Error()
	var secrets []string
	s := rawURL
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		if _, pw, ok := strings.Cut(s[:i], ":"); ok {
			secrets = append(secrets, pw)
		}
	}
	if _, q, ok := strings.Cut(rawURL, "?"); ok {
		for _, kv := range strings.Split(q, "&") {
			if k, v, _ := strings.Cut(kv, "="); strings.Contains(k, "password") {
				secrets = append(secrets, v)
			}
		}
	}
	for _, pw := range secrets {
		if pw == "" {
			continue
		}
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
		if dec, err := url.QueryUnescape(pw); err == nil && dec != "" {
			msg = strings.ReplaceAll(msg, dec, "xxxxx")
		}
	}
	return msg
}
