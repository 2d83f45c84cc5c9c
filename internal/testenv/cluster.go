package testenv

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisCluster is a private Redis Cluster: three masters, no replicas,
// each a redis-server process without persistence, stopped when the test
// ends.
type RedisCluster struct {
	Addrs []string // host:port of each node
	cmds  []*exec.Cmd
}

// StartRedisCluster starts three `redis-server --cluster-enabled yes` on
// free ports, joins them with `redis-cli --cluster create`, and waits until
// every slot is served. It fails the test if redis-server or redis-cli is
// not installed.
func StartRedisCluster(tb testing.TB) *RedisCluster {
	tb.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("testenv: redis-server is not installed (make deps installs it): %v", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Fatalf("testenv: redis-cli is not installed (make deps installs it): %v", err)
	}
	c := &RedisCluster{}
	tb.Cleanup(c.kill)
	dir := tb.TempDir()
	for i := range 3 {
		port := FreePort(tb)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i)),
			"--cluster-node-timeout", "2000", "--dir", dir,
			"--save", "", "--appendonly", "no", "--loglevel", "warning")
		if err := cmd.Start(); err != nil {
			tb.Fatalf("testenv: start redis-server (cluster node): %v", err)
		}
		c.cmds = append(c.cmds, cmd)
		c.Addrs = append(c.Addrs, addr)
		waitAnswers(tb, cli, addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range c.Addrs {
		for {
			host, port, _ := strings.Cut(addr, ":")
			out, _ := exec.Command(cli, "-h", host, "-p", port, "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("testenv: redis cluster node %s is not ok:\n%s", addr, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// waitAnswers waits until the redis-server at addr answers PING.
func waitAnswers(tb testing.TB, cli, addr string) {
	tb.Helper()
	host, port, _ := strings.Cut(addr, ":")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command(cli, "-h", host, "-p", port, "ping").Output()
		if strings.TrimSpace(string(out)) == "PONG" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testenv: redis-server on %s did not answer", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops every node with SIGKILL.
func (c *RedisCluster) kill() {
	for _, cmd := range c.cmds {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	c.cmds = nil
}
