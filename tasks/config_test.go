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
		{"BadSentinel", Config{RedisURL: "redis+sentinel://localhost:26379"}}, // no master name
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

// The machinery broker and backend once limited the URL to what
// machinery's NewGR took; ours take any URL rdb.Open does.
func TestConfig_RedisURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"redis://127.0.0.1:6379/0",
		"redis://:s3cret@redis.internal:6380/2",
		"redis://alice:secret@localhost:6379/0",
		"rediss://localhost:6379/0",
		"unix:///tmp/redis.sock",
		"redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/1",
	} {
		c := Config{RedisURL: u}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%q) = %v", u, err)
		}
	}
}

func TestConfig_RedisURLErrorHidesPassword(t *testing.T) {
	t.Parallel()
	c := Config{RedisURL: "redis://:hunter2@localhost:6379/notanumber"}
	err := c.Validate()
	if orcheo.ErrorCode(err) != orcheo.EINVALID {
		t.Fatalf("Validate() = %v, want EINVALID for a bad db", err)
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
