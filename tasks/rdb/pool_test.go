package rdb

import (
	"runtime"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestOpenBlocking_PoolSize: a client shared by blocking callers (a
// worker's consumers, each holding a connection in BLMOVE while its queue
// is empty) has one connection per caller on top of the pool every other
// command shares; Open leaves go-redis's default.
func TestOpenBlocking_PoolSize(t *testing.T) {
	t.Parallel()
	def := 10 * runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		url      string
		blocking int
		want     int
	}{
		{"redis://127.0.0.1:6379/0", 0, def},
		{"redis://127.0.0.1:6379/0", 3, def + 3},
		{"redis://127.0.0.1:6379/0?pool_size=5", 3, 8},
		{"redis+sentinel://127.0.0.1:26379/m", 4, def + 4},
	} {
		c, err := OpenBlocking(tc.url, tc.blocking)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.(*redis.Client).Options().PoolSize; got != tc.want {
			t.Errorf("%s with %d blocking callers: pool %d, want %d", tc.url, tc.blocking, got, tc.want)
		}
		_ = c.Close()
	}
	c, err := Open("redis://127.0.0.1:6379/0?pool_size=7")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.(*redis.Client).Options().PoolSize; got != 7 {
		t.Errorf("Open with pool_size=7: pool %d", got)
	}
}
