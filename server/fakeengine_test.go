package server_test

import (
	"context"
	"encoding/json"

	"github.com/orcheo/orcheo"
	"gopkg.in/yaml.v3"
)

// fakeEngine compiles like engine/ does for what these tests send.
type fakeEngine struct{}

func (fakeEngine) Compile(def []byte) (json.RawMessage, error) {
	var doc struct {
		Nodes []struct {
			ID   string `yaml:"id"`
			Type string `yaml:"type"`
		} `yaml:"nodes"`
	}
	if err := yaml.Unmarshal(def, &doc); err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "definition: %v", err)
	}
	for _, n := range doc.Nodes {
		if n.Type != "set" && n.Type != "log" {
			return nil, orcheo.Errorf(orcheo.EINVALID, "node %q: unknown type %q", n.ID, n.Type)
		}
	}
	var v interface{}
	_ = yaml.Unmarshal(def, &v)
	return json.Marshal(v)
}

func (fakeEngine) Execute(ctx context.Context, def json.RawMessage, run *orcheo.Run) *orcheo.Execution {
	return &orcheo.Execution{}
}
