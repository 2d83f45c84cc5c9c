package rdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRegistry_RegisterListExpire(t *testing.T) {
	r := sharedRDB(t)
	ctx := context.Background()
	now := time.Now()
	ttl := 30 * time.Second

	shutdown, err := r.RegisterWorker(ctx, "w2", "id-2", []byte(`{"n":2}`), now, ttl)
	must(t, err)
	if shutdown {
		t.Fatal("a fresh worker was told to shut down")
	}
	_, err = r.RegisterWorker(ctx, "w1", "id-1", []byte(`{"n":1}`), now, ttl)
	must(t, err)

	recs, err := r.OnlineWorkers(ctx, now, 10)
	must(t, err)
	if len(recs) != 2 || recs[0].Name != "w1" || recs[0].ID != "id-1" || string(recs[0].Info) != `{"n":1}` ||
		recs[1].Name != "w2" || recs[1].ID != "id-2" {
		t.Fatalf("online = %+v", recs)
	}
	if ms, _ := r.client.PTTL(ctx, r.WorkerKey("w1")).Result(); ms <= 0 || ms > ttl {
		t.Fatalf("record TTL = %v, want (0, %v]", ms, ttl)
	}
	// A worker whose deadline passed is offline, and the next write by
	// anyone drops it from the index.
	later := now.Add(ttl + time.Second)
	recs, err = r.OnlineWorkers(ctx, later, 10)
	must(t, err)
	if len(recs) != 0 {
		t.Fatalf("online after the TTL = %+v", recs)
	}
	_, err = r.RegisterWorker(ctx, "w3", "id-3", []byte(`{}`), later, ttl)
	must(t, err)
	if n, _ := r.client.ZCard(ctx, r.WorkersKey()).Result(); n != 1 {
		t.Fatalf("index holds %d names after a write past the others' deadlines, want 1", n)
	}
}

func TestRegistry_NameTaken(t *testing.T) {
	r := sharedRDB(t)
	ctx := context.Background()
	now := time.Now()
	_, err := r.RegisterWorker(ctx, "w1", "id-1", []byte(`{"a":1}`), now, time.Minute)
	must(t, err)
	if _, err := r.RegisterWorker(ctx, "w1", "id-other", []byte(`{"b":1}`), now, time.Minute); !errors.Is(err, ErrWorkerNameTaken) {
		t.Fatalf("second process under the name: err = %v, want ErrWorkerNameTaken", err)
	}
	recs, err := r.OnlineWorkers(ctx, now, 10)
	must(t, err)
	if len(recs) != 1 || recs[0].ID != "id-1" || string(recs[0].Info) != `{"a":1}` {
		t.Fatalf("the refused write changed the record: %+v", recs)
	}
	// Another process's deregister leaves the record alone.
	must(t, r.DeregisterWorker(ctx, "w1", "id-other"))
	if n, _ := r.client.Exists(ctx, r.WorkerKey("w1")).Result(); n != 1 {
		t.Fatal("deregister by another id removed the record")
	}
}

func TestRegistry_ShutdownRequest(t *testing.T) {
	r := sharedRDB(t)
	ctx := context.Background()
	now := time.Now()
	_, err := r.RegisterWorker(ctx, "w1", "id-1", []byte(`{}`), now, time.Minute)
	must(t, err)
	_, err = r.RegisterWorker(ctx, "w2", "id-2", []byte(`{}`), now, time.Minute)
	must(t, err)

	sub := r.client.Subscribe(ctx, r.ControlChannel())
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	// w1's id is current; "w2" is asked under an id it no longer holds
	// (a restarted process), so it is not told.
	n, err := r.RequestShutdown(ctx, map[string]string{"w1": "id-1", "w2": "id-stale"}, time.Minute)
	must(t, err)
	if n != 1 {
		t.Fatalf("told %d workers, want 1", n)
	}
	select {
	case msg := <-sub.Channel():
		if msg.Payload != "id-1" {
			t.Fatalf("control notice = %q, want id-1", msg.Payload)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no control notice")
	}
	if shutdown, err := r.RegisterWorker(ctx, "w1", "id-1", []byte(`{}`), now, time.Minute); err != nil || !shutdown {
		t.Fatalf("w1's heartbeat: shutdown=%v err=%v, want true", shutdown, err)
	}
	if shutdown, err := r.RegisterWorker(ctx, "w2", "id-2", []byte(`{}`), now, time.Minute); err != nil || shutdown {
		t.Fatalf("w2's heartbeat: shutdown=%v err=%v, want false", shutdown, err)
	}
	// A clean stop removes the record, the index entry and the request, so
	// a later process of that name starts clean.
	must(t, r.DeregisterWorker(ctx, "w1", "id-1"))
	for _, k := range []string{r.WorkerKey("w1"), r.ShutdownKey("w1")} {
		if n, _ := r.client.Exists(ctx, k).Result(); n != 0 {
			t.Fatalf("%s left after deregister", k)
		}
	}
	if _, err := r.client.ZScore(ctx, r.WorkersKey(), "w1").Result(); err == nil {
		t.Fatal("w1 left in the index after deregister")
	}
	if shutdown, err := r.RegisterWorker(ctx, "w1", "id-new", []byte(`{}`), now, time.Minute); err != nil || shutdown {
		t.Fatalf("new process named w1: shutdown=%v err=%v, want false", shutdown, err)
	}
}

func TestRegistry_KeysInOneSlot(t *testing.T) {
	r := New(sharedRDB(t).client, "p")
	want := Slot(r.WorkersKey())
	for _, k := range []string{r.WorkerKey("a@host-1"), r.ShutdownKey("zz"), r.WorkerKey("b")} {
		if Slot(k) != want {
			t.Fatalf("%s is in slot %d, the index in %d", k, Slot(k), want)
		}
	}
}

func TestDelayedMessages(t *testing.T) {
	r := sharedRDB(t)
	ctx := context.Background()
	due1, due2 := time.Now().Add(time.Hour).Truncate(time.Millisecond), time.Now().Add(2*time.Hour).Truncate(time.Millisecond)
	must(t, r.client.ZAdd(ctx, r.DelayedKey("q"), redisZ(due2, "m2"), redisZ(due1, "m1")).Err())
	msgs, due, err := r.DelayedMessages(ctx, "q", 10)
	must(t, err)
	if len(msgs) != 2 || msgs[0] != "m1" || msgs[1] != "m2" || !due[0].Equal(due1) || !due[1].Equal(due2) {
		t.Fatalf("delayed = %v %v", msgs, due)
	}
	msgs, _, err = r.DelayedMessages(ctx, "q", 1)
	must(t, err)
	if len(msgs) != 1 {
		t.Fatalf("limit 1 gave %d", len(msgs))
	}
}

func redisZ(t time.Time, m string) redis.Z { return redis.Z{Score: float64(t.UnixMilli()), Member: m} }
