package rules

import (
	"encoding/json"
	"fmt"

	"github.com/orcheo/orcheo"
)

// Step validates a step for SaveRunStep or CompleteRun and returns a copy
// with defaults applied: NodeAttempt at least 1, empty JSON as none, times
// normalised.
func Step(s *orcheo.RunStep) (*orcheo.RunStep, error) {
	if s == nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "step is missing")
	}
	cp := *s
	if cp.Seq < 1 {
		return nil, orcheo.Errorf(orcheo.EINVALID, "step seq must be at least 1")
	}
	if cp.Status == "" {
		return nil, orcheo.Errorf(orcheo.EINVALID, "step %q needs a status", cp.Node)
	}
	if cp.NodeAttempt < 1 {
		cp.NodeAttempt = 1
	}
	for _, f := range []struct {
		name string
		v    *json.RawMessage
	}{{"input", &cp.Input}, {"output", &cp.Output}} {
		if len(*f.v) == 0 {
			*f.v = nil
		} else if !json.Valid(*f.v) {
			return nil, orcheo.Errorf(orcheo.EINVALID, "%s of step %q must be JSON", f.name, cp.Node)
		} else if err := orcheo.CheckJSON(fmt.Sprintf("%s of step %q", f.name, cp.Node), *f.v); err != nil {
			return nil, err
		}
	}
	if err := orcheo.CheckText("step node", cp.Node); err != nil {
		return nil, err
	}
	if err := orcheo.CheckText(fmt.Sprintf("type of step %q", cp.Node), cp.NodeType); err != nil {
		return nil, err
	}
	// An error is a report, not data: it is kept, with what no store can
	// hold replaced by U+FFFD, rather than lost with the step.
	cp.Error = orcheo.SanitizeText(cp.Error)
	cp.StartedAt = Time(cp.StartedAt)
	cp.CompletedAt = TimePtr(cp.CompletedAt)
	return &cp, nil
}
