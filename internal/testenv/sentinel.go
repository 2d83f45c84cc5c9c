package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the master name the sentinels of StartSentinels watch.
const SentinelMaster = "orcheo"

// Sentinel timings: short, so a failover completes within seconds. A
// primary is marked down after sentinelDownAfter without an answer; a
// failover that stalls is retried after sentinelFailoverTimeout.
const (
	sentinelDownAfter       = 1000 // ms
	sentinelFailoverTimeout = 5000 // ms
)

// Sentinels is a Redis primary, one replica of it and three Redis Sentinel
// processes watching them (quorum 2), all private processes on free
// ports, without persistence. KillPrimary kills the primary with SIGKILL;
// the sentinels then promote the replica.
type Sentinels struct {
	tb        testing.TB
	dir       string
	mu        sync.Mutex
	servers   map[string]*exec.Cmd // host:port → the redis-server there
	sentinels []*exec.Cmd
	addrs     []string // the sentinels' host:port
}

// StartSentinels starts the primary, the replica and the sentinels, waits
// until the replica is in sync and every sentinel knows the replica and the
// other sentinels, and stops them all when the test ends. It fails the
// test if redis-server is not installed.
func StartSentinels(tb testing.TB) *Sentinels {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("testenv: redis-server is not installed (make deps installs it): %v", err)
	}
	s := &Sentinels{tb: tb, dir: tb.TempDir(), servers: map[string]*exec.Cmd{}}
	tb.Cleanup(s.stop)
	primary := addrOf(FreePort(tb))
	replica := addrOf(FreePort(tb))
	s.startServer(bin, primary)
	s.startServer(bin, replica, "--replicaof", "127.0.0.1", portOf(primary))
	s.waitReplicated(replica)
	for i := range 3 {
		addr := addrOf(FreePort(tb))
		conf := filepath.Join(s.dir, fmt.Sprintf("sentinel-%d.conf", i))
		// Sentinel rewrites its configuration file as it learns the
		// topology, so each gets a writable one of its own.
		text := strings.Join([]string{
			"port " + portOf(addr),
			"bind 127.0.0.1",
			"dir " + s.dir,
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %s 2", SentinelMaster, portOf(primary)),
			fmt.Sprintf("sentinel down-after-milliseconds %s %d", SentinelMaster, sentinelDownAfter),
			fmt.Sprintf("sentinel failover-timeout %s %d", SentinelMaster, sentinelFailoverTimeout),
			fmt.Sprintf("sentinel parallel-syncs %s 1", SentinelMaster),
		}, "\n") + "\n"
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatalf("testenv: write %s: %v", conf, err)
		}
		cmd := exec.Command(bin, conf, "--sentinel", "--loglevel", "warning")
		if err := cmd.Start(); err != nil {
			tb.Fatalf("testenv: start redis-server --sentinel: %v", err)
		}
		s.mu.Lock()
		s.sentinels = append(s.sentinels, cmd)
		s.addrs = append(s.addrs, addr)
		s.mu.Unlock()
	}
	s.waitTopology()
	return s
}

func addrOf(port int) string    { return "127.0.0.1:" + strconv.Itoa(port) }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// startServer starts a redis-server on addr with args and waits until it
// answers.
func (s *Sentinels) startServer(bin, addr string, args ...string) {
	s.tb.Helper()
	cmd := exec.Command(bin, append([]string{"--port", portOf(addr), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning", "--dir", s.dir}, args...)...)
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("testenv: start redis-server: %v", err)
	}
	s.mu.Lock()
	s.servers[addr] = cmd
	s.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	s.poll(fmt.Sprintf("redis-server on %s to answer", addr), func(ctx context.Context) (bool, string) {
		err := c.Ping(ctx).Err()
		return err == nil, fmt.Sprint(err)
	})
}

// waitReplicated waits until the replica at addr is in sync with its
// primary.
func (s *Sentinels) waitReplicated(addr string) {
	s.tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	s.poll("the replica to sync", func(ctx context.Context) (bool, string) {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(info, "master_link_status:up"), info
	})
}

// waitTopology waits until every sentinel knows the replica and the two
// other sentinels: only then can they agree on a failover.
func (s *Sentinels) waitTopology() {
	s.tb.Helper()
	for _, addr := range s.Addrs() {
		c := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1})
		s.poll("sentinel "+addr+" to learn the topology", func(ctx context.Context) (bool, string) {
			m, err := c.Master(ctx, SentinelMaster).Result()
			if err != nil {
				return false, err.Error()
			}
			return m["num-slaves"] == "1" && m["num-other-sentinels"] == "2",
				fmt.Sprintf("replicas %s, other sentinels %s", m["num-slaves"], m["num-other-sentinels"])
		})
		_ = c.Close()
	}
}

// poll calls cond every 50 ms until it holds, or fails the test after 60 s
// with what cond last saw.
func (s *Sentinels) poll(what string, cond func(ctx context.Context) (bool, string)) {
	s.tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ok, saw := cond(ctx)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("testenv: timed out waiting for %s; last saw: %s", what, saw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Addrs are the sentinels' host:port.
func (s *Sentinels) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.addrs...)
}

// URL is the redis+sentinel:// URL of the primary, database 0.
func (s *Sentinels) URL() string {
	return "redis+sentinel://" + strings.Join(s.Addrs(), ",") + "/" + SentinelMaster + "/0"
}

// Primary asks a sentinel for the primary's host:port.
func (s *Sentinels) Primary() (string, error) {
	var last error
	for _, addr := range s.Addrs() {
		c := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		hp, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		cancel()
		_ = c.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel names the primary: %v", last)
}

// KillPrimary kills the current primary with SIGKILL (its data not yet
// replicated is lost, as in a crash) and returns its address.
func (s *Sentinels) KillPrimary() string {
	s.tb.Helper()
	addr, err := s.Primary()
	if err != nil {
		s.tb.Fatalf("testenv: %v", err)
	}
	s.mu.Lock()
	cmd := s.servers[addr]
	delete(s.servers, addr)
	s.mu.Unlock()
	if cmd == nil {
		s.tb.Fatalf("testenv: the primary %s is not one of ours", addr)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return addr
}

// WaitFailover waits until the sentinels name a primary other than old
// and it accepts writes, and returns its address.
func (s *Sentinels) WaitFailover(old string) string {
	s.tb.Helper()
	var addr string
	s.poll("the sentinels to promote the replica", func(ctx context.Context) (bool, string) {
		a, err := s.Primary()
		if err != nil {
			return false, err.Error()
		}
		if a == old {
			return false, "the sentinels still name " + old
		}
		c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		defer c.Close()
		role, err := c.Do(ctx, "ROLE").Slice()
		if err != nil || len(role) == 0 || role[0] != "master" {
			return false, fmt.Sprintf("%s: ROLE %v %v", a, role, err)
		}
		addr = a
		return true, ""
	})
	return addr
}

// stop kills every process.
func (s *Sentinels) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cmd := range s.sentinels {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	for _, cmd := range s.servers {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	s.sentinels, s.servers = nil, map[string]*exec.Cmd{}
}
