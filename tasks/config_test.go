package tasks

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/redis/go-redis/v9"
)

func TestConfig_Validate(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		c := Config{RedisURL: "redis://127.0.0.1:6379/0"}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		want := Config{
			RedisURL:        "redis://127.0.0.1:6379/0",
			Prefix:          PrefixDefault,
			Queues:          []string{orcheo.DefaultQueue},
			Concurrency:     ConcurrencyDefault,
			ResultBackend:   ResultBackendRedis,
			ResultsExpireIn: ResultsExpireInDefault,
			LeaseDuration:   LeaseDurationDefault,

			HeartbeatInterval: HeartbeatIntervalDefault,
			ConsumerTTL:       ConsumerTTLDefault,
			RescueInterval:    RescueIntervalDefault,
			ReenqueueAfter:    ReenqueueAfterDefault,
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("Validate() filled %+v, want %+v", c, want)
		}
		r := newRDBOn(redis.NewClient(&redis.Options{}), &c)
		if got := r.QueueKey(queueName("")); got != "orcheo:{default}:queue" {
			t.Fatalf("QueueKey(default) = %q", got)
		}
		if got := r.DelayedKey(queueName("")); got != "orcheo:{default}:delayed" {
			t.Fatalf("DelayedKey(default) = %q", got)
		}
	})

	t.Run("QueuesDeduplicated", func(t *testing.T) {
		t.Parallel()
		c := Config{RedisURL: "redis://localhost:6379", Queues: []string{"default", " high ", "default"}}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if want := []string{"default", "high"}; !reflect.DeepEqual(c.Queues, want) {
			t.Fatalf("Queues = %q, want %q", c.Queues, want)
		}
	})

	invalid := []struct {
		name string
		cfg  Config
	}{
		{"NoURL", Config{}},
		{"BadScheme", Config{RedisURL: "http://localhost:6379"}},
		{"BadDB", Config{RedisURL: "redis://localhost:6379/x"}},
		{"TLS", Config{RedisURL: "rediss://localhost:6379/0"}},
		{"Username", Config{RedisURL: "redis://alice:secret@localhost:6379/0"}},
		{"Unix", Config{RedisURL: "unix:///tmp/redis.sock"}},
		{"BadQueue", Config{RedisURL: "redis://localhost:6379", Queues: []string{"Has Space"}}},
		{"EmptyQueue", Config{RedisURL: "redis://localhost:6379", Queues: []string{""}}},
		{"NegativeConcurrency", Config{RedisURL: "redis://localhost:6379", Concurrency: -1}},
		{"BadBackend", Config{RedisURL: "redis://localhost:6379", ResultBackend: "memcache"}},
		{"NegativeLease", Config{RedisURL: "redis://localhost:6379", LeaseDuration: -time.Second}},
		{"BadPrefix", Config{RedisURL: "redis://localhost:6379", Prefix: "a{b}"}},
	}
	for _, tt := range invalid {
		t.Run("ErrInvalid/"+tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.cfg.Validate(); orcheo.ErrorCode(err) != orcheo.EINVALID {
				t.Fatalf("Validate() = %v, want EINVALID", err)
			}
		})
	}
}

func TestRedisAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url, addr string
		db        int
	}{
		{"redis://127.0.0.1:6379/0", "127.0.0.1:6379", 0},
		{"redis://localhost/3", "localhost:6379", 3},
		{"redis://:s3cret@redis.internal:6380/2", "s3cret@redis.internal:6380", 2},
		{"redis://default:s3cret@redis.internal:6380", "s3cret@redis.internal:6380", 0},
	} {
		addr, db, err := redisAddr(tt.url)
		if err != nil {
			t.Fatalf("redisAddr(%q): %v", tt.url, err)
		}
		if addr != tt.addr || db != tt.db {
			t.Errorf("redisAddr(%q) = %q, %d; want %q, %d", tt.url, addr, db, tt.addr, tt.db)
		}
	}
}

func TestRedisAddr_ErrorHidesPassword(t *testing.T) {
	t.Parallel()
	_, _, err := redisAddr("redis://:hunter2@localhost:6379/notanumber")
	if err == nil {
		t.Fatal("want an error for a bad db")
	}
	if msg := err.Error(); strings.Contains(msg, "hunter2") {
		t.Fatalf("error %q contains the password", msg)
	}
}

func TestSplitConcurrency(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		total, n int
		want     []int
	}{
		{10, 1, []int{10}},
		{10, 3, []int{4, 3, 3}},
		{2, 3, []int{1, 1, 1}},
		{4, 2, []int{2, 2}},
	} {
		if got := splitConcurrency(tt.total, tt.n); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitConcurrency(%d, %d) = %v, want %v", tt.total, tt.n, got, tt.want)
		}
	}
}
