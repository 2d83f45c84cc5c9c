package rdb

import (
	"reflect"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestParseSentinelURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		want redis.FailoverOptions
	}{
		{"redis+sentinel://127.0.0.1:26380,127.0.0.1:26381/mymaster",
			redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{"127.0.0.1:26380", "127.0.0.1:26381"}}},
		{"redis+sentinel://:s%40cret@h1:1,h2/m/3",
			redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"h1:1", "h2:26379"}, Password: "s@cret", DB: 3}},
		{"REDIS+SENTINEL://user:pw@[::1]:1,[::1]:2/m/0?sentinel_password=sp&sentinel_username=su",
			redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"[::1]:1", "[::1]:2"}, Username: "user",
				Password: "pw", SentinelUsername: "su", SentinelPassword: "sp"}},
	} {
		got, err := parseSentinelURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.url, *got, tc.want)
		}
	}
}

func TestCheckURL_Refuses(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"redis+sentinel://:hunter2@/m",                         // no sentinel
		"redis+sentinel://:hunter2@h:1",                        // no master
		"redis+sentinel://:hunter2@h:1/m/x",                    // bad db
		"redis+sentinel://:hunter2@h:1/m/0/extra",              // too long a path
		"redis+sentinel://:hunter2@h:99999/m",                  // bad port
		"redis+sentinel://:hunter2@h:1/m?pool_size=3",          // unknown option
		"redis+sentinel://h:1/m?sentinel_password=hunter2&x=1", // unknown option, secret in the query
		"redis://:hunter2@h:1/x",                               // plain URL, bad db
	} {
		err := CheckURL(bad)
		if err == nil {
			t.Errorf("CheckURL(%q) accepted it", bad)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("CheckURL(%q) = %v: quotes the password", bad, err)
		}
		if _, err := Open(bad); err == nil {
			t.Errorf("Open(%q) accepted it", bad)
		}
	}
	if err := CheckURL("redis://127.0.0.1:6379/0"); err != nil {
		t.Errorf("plain URL: %v", err)
	}
}

func TestSentinelURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addrs        []string
		master, base string
		want         string
	}{
		{[]string{"a:1", "b:2"}, "m", "", "redis+sentinel://a:1,b:2/m/0"},
		{[]string{"a:1"}, "m", "redis://:p%40w@127.0.0.1:6379/2", "redis+sentinel://:p%40w@a:1/m/2"},
		{[]string{"a:1"}, "m", "redis+sentinel://:pw@x:9/old/4?sentinel_password=sp", "redis+sentinel://:pw@a:1/m/4?sentinel_password=sp"},
		{nil, "m", "redis+sentinel://x:9,y:8/old/4", "redis+sentinel://x:9,y:8/m/4"},
		{[]string{"a:1"}, "", "redis+sentinel://x:9/old", "redis+sentinel://a:1/old/0"},
	} {
		got, err := SentinelURL(tc.addrs, tc.master, tc.base)
		if err != nil || got != tc.want {
			t.Errorf("SentinelURL(%v, %q, %q) = %q, %v; want %q", tc.addrs, tc.master, tc.base, got, err, tc.want)
		}
		if err == nil {
			if err := CheckURL(got); err != nil {
				t.Errorf("%q does not parse back: %v", got, err)
			}
		}
	}
	for _, bad := range [][]string{{}, {"nohost"}, {"h:x"}} {
		if _, err := SentinelURL(bad, "m", ""); err == nil {
			t.Errorf("SentinelURL(%v) accepted it", bad)
		}
	}
	if _, err := SentinelURL([]string{"a:1"}, "", "redis://h:1/0"); err == nil {
		t.Error("SentinelURL without a master accepted it")
	}
	if _, err := SentinelURL([]string{"a:1"}, "a/b", ""); err == nil {
		t.Error("SentinelURL with a slash in the master name accepted it")
	}
}
