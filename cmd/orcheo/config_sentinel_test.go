package main

import (
	"strings"
	"testing"
)

// TestConfig_Sentinels: ORCHEO_REDIS_SENTINELS and
// ORCHEO_REDIS_SENTINEL_MASTER become a redis+sentinel:// RedisURL keeping
// REDIS_URL's password and database.
func TestConfig_Sentinels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // RedisURL, or an error's text after "!"
	}{
		{"None", map[string]string{}, "redis://127.0.0.1:6379/0"},
		{"Sentinels", map[string]string{"ORCHEO_REDIS_SENTINELS": "s1:26379, s2:26380",
			"ORCHEO_REDIS_SENTINEL_MASTER": "main", "REDIS_URL": "redis://:pw@ignored:6379/2"},
			"redis+sentinel://:pw@s1:26379,s2:26380/main/2"},
		{"MasterFromURL", map[string]string{"ORCHEO_REDIS_SENTINELS": "s1:1",
			"REDIS_URL": "redis+sentinel://old:2/main/1"}, "redis+sentinel://s1:1/main/1"},
		{"URLOnly", map[string]string{"REDIS_URL": "redis+sentinel://s1:1/main"}, "redis+sentinel://s1:1/main"},
		{"NoMaster", map[string]string{"ORCHEO_REDIS_SENTINELS": "s1:1"}, "!ORCHEO_REDIS_SENTINEL_MASTER"},
		{"NoSentinels", map[string]string{"ORCHEO_REDIS_SENTINEL_MASTER": "main"}, "!no sentinel address"},
		{"BadAddress", map[string]string{"ORCHEO_REDIS_SENTINELS": "s1", "ORCHEO_REDIS_SENTINEL_MASTER": "m"}, "!invalid sentinel address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ConfigFromEnv(func(k string) string { return tc.env[k] })
			if want, isErr := strings.CutPrefix(tc.want, "!"); isErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error = %v, want one naming %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RedisURL != tc.want {
				t.Fatalf("RedisURL = %q, want %q", cfg.RedisURL, tc.want)
			}
		})
	}
}
