package server_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/server"
	verifier "github.com/orcheo/orcheo/webhook"
)

// raceWindow is how long a read of a webhook config waits for a second
// reader before it goes on alone. Long enough for a request sent at the
// same time to arrive on a loaded machine; a store that serialises updates
// makes the first reader wait it out, so it is the cost of each race.
const raceWindow = time.Second

// raceTriggers is a TriggerService that, while armed, holds every read of
// a stored webhook config between the read and its use until a second
// reader has read too (or raceWindow passed): the reads of a handler that
// reads, merges and writes (FindWebhookConfig) and the read
// UpdateWebhookConfig hands fn. Two updates that can interleave then both
// merge into the same stored config and one is lost; updates the store
// serialises cannot meet there, and each goes on after raceWindow. It
// records the verify secrets (sealed) of every config written.
type raceTriggers struct {
	orcheo.TriggerService

	mu      sync.Mutex
	armed   bool
	readers int
	met     chan struct{} // closed when the second reader arrived
	written []orcheo.WebhookVerify
}

// arm starts holding reads.
func (t *raceTriggers) arm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armed, t.readers, t.met, t.written = true, 0, make(chan struct{}), nil
}

// disarm stops holding reads and returns the verify secrets written since
// arm.
func (t *raceTriggers) disarm() []orcheo.WebhookVerify {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armed = false
	return t.written
}

// hold waits, while armed, for a second reader or raceWindow.
func (t *raceTriggers) hold() {
	t.mu.Lock()
	if !t.armed {
		t.mu.Unlock()
		return
	}
	t.readers++
	met := t.met
	if t.readers == 2 {
		close(met)
	}
	t.mu.Unlock()
	select {
	case <-met:
	case <-time.After(raceWindow):
	}
}

func (t *raceTriggers) record(cfg *orcheo.WebhookConfig) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.armed && cfg != nil && cfg.Verify != nil {
		t.written = append(t.written, *cfg.Verify)
	}
}

func (t *raceTriggers) FindWebhookConfig(ctx context.Context, workflowID string) (*orcheo.WebhookConfig, error) {
	cfg, err := t.TriggerService.FindWebhookConfig(ctx, workflowID)
	t.hold()
	return cfg, err
}

func (t *raceTriggers) SetWebhookConfig(ctx context.Context, workflowID string, cfg *orcheo.WebhookConfig) error {
	t.record(cfg)
	return t.TriggerService.SetWebhookConfig(ctx, workflowID, cfg)
}

func (t *raceTriggers) UpdateWebhookConfig(ctx context.Context, workflowID string,
	fn func(*orcheo.WebhookConfig) (*orcheo.WebhookConfig, error)) (*orcheo.WebhookConfig, error) {
	return t.TriggerService.UpdateWebhookConfig(ctx, workflowID, func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error) {
		t.hold()
		next, err := fn(stored)
		if err == nil {
			t.record(next)
		}
		return next, err
	})
}

// raceEnv is a server on PostgreSQL with a SecretBox, the webhook
// verifier and raceTriggers, and a workflow ref whose webhook verifies
// the secret first in X-Token. It returns the first secret's sealed form.
func raceEnv(t *testing.T, dbName, ref, first string) (*env, *raceTriggers, *orcheo.Workflow, string) {
	t.Helper()
	triggers := &raceTriggers{}
	e := newEnv(t, envOptions{postgresDB: dbName, setup: func(s *server.Server, _ *db.Store) {
		s.Secrets = mustSecretBox(t)
		s.Verifier = verifier.Verifier{}
		triggers.TriggerService = s.Triggers
		s.Triggers = triggers
	}})
	wf := e.mustWorkflow(t, ref)
	putView(t, e, ref, `{"enabled":true,"verify":{"type":"secret","header":"X-Token","secret":"`+first+`"}}`)
	return e, triggers, wf, stored(t, e, wf).Verify.SealedSecret
}

// atOnce runs the calls together and fails the test if one failed.
func atOnce(t *testing.T, calls ...func() error) {
	t.Helper()
	errs := make([]error, len(calls))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = call()
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookSecretRotate_Concurrent: rotations at once are applied one
// after the other, so each keeps the secret the one before it set as the
// previous one; none is lost, and the last two secrets verify.
func TestWebhookSecretRotate_Concurrent(t *testing.T) {
	t.Parallel()
	const first = "first-shared-secret"
	e, triggers, wf, firstSealed := raceEnv(t, "server_webhook_rotate_race", "rot-race", first)
	ctx := context.Background()
	const rotations = 6
	secrets := make([]string, rotations)
	calls := make([]func() error, rotations)
	for i := range secrets {
		secrets[i] = fmt.Sprintf("rotated-shared-secret-%02d", i)
		calls[i] = func() error {
			_, err := e.client.RotateWebhookSecret(ctx, "rot-race", secrets[i], false)
			return err
		}
	}
	triggers.arm()
	atOnce(t, calls...)
	written := triggers.disarm()

	// Each rotation wrote (current, previous); applied one after the
	// other they chain from the first secret through every rotation's.
	if len(written) != rotations {
		t.Fatalf("%d configs written, want one per rotation (%d)", len(written), rotations)
	}
	next := map[string]string{} // sealed previous → sealed current
	for _, v := range written {
		if _, dup := next[v.SealedPreviousSecret]; dup {
			t.Fatal("two rotations replaced the same secret: one of them was lost")
		}
		next[v.SealedPreviousSecret] = v.SealedSecret
	}
	prev, cur := "", firstSealed
	for range rotations {
		n, ok := next[cur]
		if !ok {
			t.Fatal("no rotation replaced a secret the one before set: the chain is broken")
		}
		prev, cur = cur, n
	}
	final := stored(t, e, wf).Verify
	if final.SealedSecret != cur || final.SealedPreviousSecret != prev {
		t.Fatalf("stored secrets are not the chain's last two")
	}
	plainCur, err := e.srv.Secrets.Open(cur)
	if err != nil {
		t.Fatal(err)
	}
	plainPrev, err := e.srv.Secrets.Open(prev)
	if err != nil {
		t.Fatal(err)
	}
	if plainCur == plainPrev || plainPrev == first {
		t.Fatalf("current %q, previous %q: want two of the rotated secrets", plainCur, plainPrev)
	}
	if deliver(t, e, "rot-race", plainCur) != 202 || deliver(t, e, "rot-race", plainPrev) != 202 {
		t.Fatal("the last two secrets must verify")
	}
	if deliver(t, e, "rot-race", first) != 401 {
		t.Fatal("the first secret, rotated out twice, must not verify")
	}
}

// TestWebhookSecretRotate_TwoConcurrent: two rotations from S0 at once end
// as (A, previous B) or (B, previous A), never with S0 as the previous.
func TestWebhookSecretRotate_TwoConcurrent(t *testing.T) {
	t.Parallel()
	const s0, a, b = "secret-zero-shared", "secret-a-shared", "secret-b-shared"
	e, triggers, _, _ := raceEnv(t, "server_webhook_rotate_two", "rot-two", s0)
	ctx := context.Background()
	triggers.arm()
	atOnce(t,
		func() error { _, err := e.client.RotateWebhookSecret(ctx, "rot-two", a, false); return err },
		func() error { _, err := e.client.RotateWebhookSecret(ctx, "rot-two", b, false); return err },
	)
	triggers.disarm()
	if deliver(t, e, "rot-two", a) != 202 || deliver(t, e, "rot-two", b) != 202 {
		t.Fatal("both rotated secrets must verify: a rotation was lost")
	}
	if deliver(t, e, "rot-two", s0) != 401 {
		t.Fatal("S0 still verifies: a rotation was lost")
	}
}

// TestWebhookConfigUpdate_RacesRotate: a PUT changing the rate limit at
// the same time as a rotation keeps both the rate limit and the rotated
// secret (the PUT's merge keeps the stored secrets it reads in the store's
// update, not before it).
func TestWebhookConfigUpdate_RacesRotate(t *testing.T) {
	t.Parallel()
	const old, next = "old-shared-secret", "next-shared-secret"
	e, triggers, wf, oldSealed := raceEnv(t, "server_webhook_put_race", "put-race", old)
	ctx := context.Background()
	limit := &orcheo.WebhookRateLimit{Limit: 1000, Per: "1m"}
	triggers.arm()
	atOnce(t,
		func() error {
			_, err := e.client.SetWebhookConfig(ctx, "put-race", &orcheo.WebhookConfig{Enabled: true,
				Verify: &orcheo.WebhookVerify{Type: orcheo.VerifySecret, Header: "X-Token"}, RateLimit: limit})
			return err
		},
		func() error { _, err := e.client.RotateWebhookSecret(ctx, "put-race", next, false); return err },
	)
	triggers.disarm()
	cfg := stored(t, e, wf)
	if cfg.RateLimit == nil || *cfg.RateLimit != *limit {
		t.Fatalf("rate limit %+v, want %+v: the PUT was lost", cfg.RateLimit, limit)
	}
	// Checked in the store: a delivery would need a rate limiter.
	if cfg.Verify.SealedPreviousSecret != oldSealed {
		t.Fatal("the old secret is not the previous one: the rotation was lost")
	}
	if current, err := e.srv.Secrets.Open(cfg.Verify.SealedSecret); err != nil || current != next {
		t.Fatalf("the current secret is not the rotated one (%v): the rotation was lost", err)
	}
}
