package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	backendsiface "github.com/RichardKnop/machinery/v2/backends/iface"
	mtasks "github.com/RichardKnop/machinery/v2/tasks"
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
type resultBackend struct {
	client   redis.UniversalClient
	prefix   string // key of a task's state: prefix + task UUID
	expireIn time.Duration
	timeout  time.Duration // bounds each command: machinery passes no context
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

// SetStateSuccess keeps the success state of signature's task: one SET.
func (b *resultBackend) SetStateSuccess(signature *mtasks.Signature, results []*mtasks.TaskResult) error {
	return b.set(mtasks.NewSuccessTaskState(signature, results))
}

// SetStateFailure keeps the failure state of signature's task: one SET.
func (b *resultBackend) SetStateFailure(signature *mtasks.Signature, err string) error {
	return b.set(mtasks.NewFailureTaskState(signature, err))
}

func (b *resultBackend) set(state *mtasks.TaskState) error {
	encoded, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("encode state of task %s: %w", state.TaskUUID, err)
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
