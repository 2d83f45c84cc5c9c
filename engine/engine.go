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
	// NodeTypes adds node types to the built-in ones (set, log, fail), or
	// replaces a built-in one of the same name.
	NodeTypes map[string]NodeType
}

// Engine compiles and executes workflow definitions. It is safe for
// concurrent use; compiled definitions are cached by content, so executing
// the same definition again does not recompile its expressions.
type Engine struct {
	logger logrus.FieldLogger
	now    func() time.Time
	types  map[string]NodeType

	mu    sync.Mutex
	cache map[[sha256.Size]byte]*program
}

// cacheSize bounds the compiled-definition cache. A worker executes few
// distinct definitions; when full, an arbitrary entry is dropped.
const cacheSize = 256

// New returns an Engine with opts.
func New(opts Options) *Engine {
	e := &Engine{
		logger: opts.Logger,
		now:    opts.Now,
		types:  make(map[string]NodeType, len(builtinTypes)+len(opts.NodeTypes)),
		cache:  make(map[[sha256.Size]byte]*program),
	}
	if e.logger == nil {
		e.logger = logrus.StandardLogger()
	}
	if e.now == nil {
		e.now = time.Now
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
	p, err := compile(definition, e.types)
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
	p, err := compile(definition, e.types)
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
