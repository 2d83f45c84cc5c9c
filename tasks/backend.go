package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	backendsiface "github.com/RichardKnop/machinery/v2/backends/iface"
	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	trdb "github.com/orcheo/orcheo/tasks/rdb"
	"github.com/redis/go-redis/v9"
)

// resultBackend is machinery's result backend for orcheo: the task states
// are informational only (a run's status lives in the database), so of
// the states machinery's worker sets (received, started, retry, then
// success or failure; pending at publish) only the terminal one is kept,
// in one SET with expiry. machinery's Redis backend spends 4 SET and 3 GET
// per run on the same information.
//
// orcheo sends no groups or chords: InitGroup is a no-op (machinery calls
// it only when sending a group) and the other group methods fail with
// errNoGroups.
//
// The terminal state of a task the reliable broker delivered is not
// written by machinery's goroutine, on the slot's path: the broker holds
// it (hold, take) and writes it with the message's ack, in the ack's round
// trip (trdb.Ack), so a run costs one Redis round trip fewer, and its
// state appears once its completion has committed.
type resultBackend struct {
	client   redis.UniversalClient
	prefix   string // key of a task's state: prefix + task UUID
	expireIn time.Duration
	timeout  time.Duration // bounds each command: machinery passes no context

	held sync.Map // *mtasks.Signature → *heldState: states kept for the ack
}

// heldState is the encoded terminal state of a held task, once machinery
// set it.
type heldState struct {
	uuid    string
	encoded []byte // nil until set
}

var _ backendsiface.Backend = (*resultBackend)(nil)

// errNoGroups is what the group and chord methods return.
var errNoGroups = errors.New("orcheo's result backend does not keep groups or chords")

// resultBackendTimeout bounds one Redis command of the result backend.
const resultBackendTimeout = 5 * time.Second

// newResultBackend returns a backend on client, the process's Redis
// client, keeping terminal states under keyPrefix for expireIn.
func newResultBackend(client redis.UniversalClient, keyPrefix string, expireIn time.Duration) *resultBackend {
	return &resultBackend{client: client, prefix: keyPrefix, expireIn: expireIn, timeout: resultBackendTimeout}
}

func (b *resultBackend) InitGroup(string, []string) error { return nil }

func (b *resultBackend) GroupCompleted(string, int) (bool, error) { return false, errNoGroups }

func (b *resultBackend) GroupTaskStates(string, int) ([]*mtasks.TaskState, error) {
	return nil, errNoGroups
}

func (b *resultBackend) TriggerChord(string) (bool, error) { return false, errNoGroups }

// SetStatePending, SetStateReceived, SetStateStarted and SetStateRetry
// write nothing: no one reads a state that is not terminal.
func (b *resultBackend) SetStatePending(*mtasks.Signature) error  { return nil }
func (b *resultBackend) SetStateReceived(*mtasks.Signature) error { return nil }
func (b *resultBackend) SetStateStarted(*mtasks.Signature) error  { return nil }
func (b *resultBackend) SetStateRetry(*mtasks.Signature) error    { return nil }

// SetStateSuccess keeps the success state of signature's task: one SET,
// or none of its own when the task is held (then the ack writes it).
func (b *resultBackend) SetStateSuccess(signature *mtasks.Signature, results []*mtasks.TaskResult) error {
	return b.set(signature, mtasks.NewSuccessTaskState(signature, results))
}

// SetStateFailure keeps the failure state of signature's task, as
// SetStateSuccess does.
func (b *resultBackend) SetStateFailure(signature *mtasks.Signature, err string) error {
	return b.set(signature, mtasks.NewFailureTaskState(signature, err))
}

// hold makes the terminal state machinery sets for sig's task (the same
// signature: machinery passes the broker's through) wait for take instead
// of being written. The broker calls it before it processes sig.
func (b *resultBackend) hold(sig *mtasks.Signature) {
	b.held.Store(sig, &heldState{uuid: sig.UUID})
}

// take stops holding sig's task and returns its state as the ack writes
// it, or nil when machinery set none (a retry, a task that failed before
// it ran).
func (b *resultBackend) take(sig *mtasks.Signature) *trdb.TaskResult {
	v, ok := b.held.LoadAndDelete(sig)
	if !ok || v.(*heldState).encoded == nil {
		return nil
	}
	h := v.(*heldState)
	return &trdb.TaskResult{TaskUUID: h.uuid, State: h.encoded, TTL: b.expireIn}
}

// write writes a state take returned by itself, when its message is not
// acked (handed back or delayed) and so the ack does not carry it.
func (b *resultBackend) write(res *trdb.TaskResult) error {
	if res == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	if err := b.client.Set(ctx, b.prefix+res.TaskUUID, res.State, res.TTL).Err(); err != nil {
		return fmt.Errorf("set state of task %s: %w", res.TaskUUID, err)
	}
	return nil
}

func (b *resultBackend) set(sig *mtasks.Signature, state *mtasks.TaskState) error {
	encoded, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("encode state of task %s: %w", state.TaskUUID, err)
	}
	if v, ok := b.held.Load(sig); ok {
		v.(*heldState).encoded = encoded // machinery's goroutine, before take
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	if err := b.client.Set(ctx, b.prefix+state.TaskUUID, encoded, b.expireIn).Err(); err != nil {
		return fmt.Errorf("set state of task %s: %w", state.TaskUUID, err)
	}
	return nil
}

// GetState returns the terminal state of task taskUUID, or redis.Nil while
// there is none (the task has not ended, or its state expired).
func (b *resultBackend) GetState(taskUUID string) (*mtasks.TaskState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	item, err := b.client.Get(ctx, b.prefix+taskUUID).Bytes()
	if err != nil {
		return nil, err
	}
	state := new(mtasks.TaskState)
	dec := json.NewDecoder(bytes.NewReader(item))
	dec.UseNumber() // as machinery's backends: results keep their numeric type
	if err := dec.Decode(state); err != nil {
		return nil, fmt.Errorf("decode state of task %s: %w", taskUUID, err)
	}
	return state, nil
}

func (b *resultBackend) IsAMQP() bool { return false }

// PurgeState deletes the state of task taskUUID.
func (b *resultBackend) PurgeState(taskUUID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	return b.client.Del(ctx, b.prefix+taskUUID).Err()
}

func (b *resultBackend) PurgeGroupMeta(string) error { return nil }
