package engine

import (
	"context"
	"encoding/json"

	"github.com/sirupsen/logrus"
)

func init() { builtinTypes["log"] = logType{} }

// logType writes a message through the engine's logger. Option `message` is
// an expression; a result that is not a string is logged as its JSON.
// Option `level` is debug, info (default), warn or error. The output is
// {"message": "<text>"}.
type logType struct{}

func (logType) Compile(spec *Spec) (Action, error) {
	msg, err := spec.Expr("message", true)
	if err != nil {
		return nil, err
	}
	level, err := spec.Enum("level", "info", "debug", "info", "warn", "error")
	if err != nil {
		return nil, err
	}
	lvl, _ := logrus.ParseLevel(level)
	return &logAction{message: msg, level: lvl}, nil
}

type logAction struct {
	message *Expr
	level   logrus.Level
}

func (a *logAction) Run(ctx context.Context, scope *Scope) (Result, error) {
	v, err := scope.Eval(a.message)
	if err != nil {
		return Result{}, err
	}
	text := textOf(v)
	switch a.level {
	case logrus.DebugLevel:
		scope.Logger.Debug(text)
	case logrus.WarnLevel:
		scope.Logger.Warn(text)
	case logrus.ErrorLevel:
		scope.Logger.Error(text)
	default:
		scope.Logger.Info(text)
	}
	return Result{Output: map[string]any{"message": text}}, nil
}

// textOf renders an expression result as text: strings as they are, any
// other value as JSON.
func textOf(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "<unencodable value>"
	}
	return string(b)
}
