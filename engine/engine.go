package engine

import (
	"crypto/sha256"
	"encoding/json"
	"sync"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

var _ orcheo.Engine = (*Engine)(nil)

// Options configures an Engine. Zero fields take defaults.
type Options struct {
	// Logger receives the output of log nodes and debug lines about each
	// node, with run_id, workflow_id, component=engine and node fields.
	// A *logrus.Logger or *logrus.Entry fits. Default: logrus.StandardLogger().
	Logger logrus.FieldLogger
	// Now is the clock of step timestamps. Default: time.Now.
	Now func() time.Time
	// NodeTypes adds node types to the built-in ones, or replaces a
	// built-in one of the same name.
	NodeTypes map[string]NodeType

	// HTTP configures the http node's outbound calls.
	HTTP HTTPOptions
	// Env holds the values expressions see as env.NAME: only what the
	// operator chose to expose (ORCHEO_WORKFLOW_ENV), never the whole
	// process environment. Nil: env is empty.
	Env map[string]string
	// Runs lets workflow nodes start and follow child runs. Nil: workflow
	// nodes compile, but fail when they run.
	Runs orcheo.RunStarter
	// MaxDelay bounds a delay node's wait. Default: DefaultMaxDelay.
	MaxDelay time.Duration
	// SuspendDelaysAfter is the longest wait a delay node sleeps through
	// in its worker slot; a longer one suspends the run when the caller
	// allows it (ExecuteOptions.Suspendable). Default:
	// DefaultSuspendDelaysAfter; negative: never suspend.
	SuspendDelaysAfter time.Duration
	// MaxStepOutputBytes bounds the output a step records; a larger one is
	// replaced by a truncation marker (later expressions still see it
	// whole). Default: DefaultMaxStepOutputBytes.
	MaxStepOutputBytes int
	// ChildPollInterval is how often a waiting workflow node looks at its
	// child run at most while in its worker slot, and how long its first
	// suspension lasts. Default: 1s.
	ChildPollInterval time.Duration
	// SuspendChildWaitAfter is how long a workflow node waits for its
	// child run in its worker slot; a child still going then suspends the
	// parent when the caller allows it (ExecuteOptions.Suspendable), so
	// the slot is free for the child. Default:
	// DefaultSuspendChildWaitAfter; negative: never suspend.
	SuspendChildWaitAfter time.Duration
}

// Defaults of Options.
const (
	// DefaultMaxDelay is 30 days. A delay that long costs no worker slot
	// (it suspends the run), but the run resumes with the workflow version
	// it started with, so a wait of months is better a cron trigger.
	DefaultMaxDelay           = 30 * 24 * time.Hour
	DefaultSuspendDelaysAfter = 10 * time.Second
	DefaultMaxStepOutputBytes = 64 << 10
	DefaultChildPollInterval  = time.Second
	// DefaultSuspendChildWaitAfter lets a quick child finish while its
	// parent keeps the slot.
	DefaultSuspendChildWaitAfter = 2 * time.Second
)

// Engine compiles and executes workflow definitions. It is safe for
// concurrent use; compiled definitions are cached by content, so executing
// the same definition again does not recompile its expressions.
type Engine struct {
	logger   logrus.FieldLogger
	now      func() time.Time
	types    map[string]NodeType
	env      map[string]any
	runs     orcheo.RunStarter
	maxDelay time.Duration
	// suspendAfter is Options.SuspendDelaysAfter; <= 0: never suspend.
	suspendAfter time.Duration
	maxOutput    int
	childPoll    time.Duration
	// childInSlot is Options.SuspendChildWaitAfter; <= 0: never suspend.
	childInSlot time.Duration
	http        *httpClient

	mu    sync.Mutex
	cache map[[sha256.Size]byte]*program
}

// cacheSize bounds the compiled-definition cache. A worker executes few
// distinct definitions; when full, an arbitrary entry is dropped.
const cacheSize = 256

// New returns an Engine with opts.
func New(opts Options) *Engine {
	e := &Engine{
		logger:       opts.Logger,
		now:          opts.Now,
		types:        make(map[string]NodeType, len(builtinTypes)+len(opts.NodeTypes)),
		env:          map[string]any{},
		runs:         opts.Runs,
		maxDelay:     opts.MaxDelay,
		suspendAfter: opts.SuspendDelaysAfter,
		maxOutput:    opts.MaxStepOutputBytes,
		childPoll:    opts.ChildPollInterval,
		childInSlot:  opts.SuspendChildWaitAfter,
		http:         newHTTPClient(opts.HTTP),
		cache:        make(map[[sha256.Size]byte]*program),
	}
	if e.logger == nil {
		e.logger = logrus.StandardLogger()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.maxDelay <= 0 {
		e.maxDelay = DefaultMaxDelay
	}
	if e.suspendAfter == 0 {
		e.suspendAfter = DefaultSuspendDelaysAfter
	}
	if e.maxOutput <= 0 {
		e.maxOutput = DefaultMaxStepOutputBytes
	}
	if e.childPoll <= 0 {
		e.childPoll = DefaultChildPollInterval
	}
	if e.childInSlot == 0 {
		e.childInSlot = DefaultSuspendChildWaitAfter
	}
	for k, v := range opts.Env {
		e.env[k] = v
	}
	for name, t := range builtinTypes {
		e.types[name] = t
	}
	for name, t := range opts.NodeTypes {
		e.types[name] = t
	}
	return e
}

// Compile parses a JSON or YAML definition, validates it and returns its
// canonical JSON form. Every error is EINVALID, with a message naming the
// node and field at fault, e.g. `node "say": field "message": unexpected
// token …`. Compiling a canonical form returns it unchanged.
func (e *Engine) Compile(definition []byte) (json.RawMessage, error) {
	p, err := e.compile(definition)
	if err != nil {
		return nil, err
	}
	e.store(p.canonical, p)
	return p.canonical, nil
}

// program returns the compiled form of definition, from the cache when it
// was compiled before.
func (e *Engine) program(definition []byte) (*program, error) {
	key := sha256.Sum256(definition)
	e.mu.Lock()
	p, ok := e.cache[key]
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := e.compile(definition)
	if err != nil {
		return nil, err
	}
	e.store(definition, p)
	return p, nil
}

func (e *Engine) store(definition []byte, p *program) {
	key := sha256.Sum256(definition)
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.cache) >= cacheSize {
		for k := range e.cache {
			delete(e.cache, k)
			break
		}
	}
	e.cache[key] = p
}

// errorText is the user-facing text of err: an application error's
// message, or err's own text.
func errorText(err error) string {
	if oe, ok := err.(*orcheo.Error); ok {
		return oe.Message
	}
	return err.Error()
}
