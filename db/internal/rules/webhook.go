package rules

import (
	"encoding/json"
	"fmt"

	"github.com/orcheo/orcheo"
)

// EncodeWebhookConfig validates cfg and encodes it as both backends store
// it (one JSON column). A config holding a plaintext secret is EINVALID:
// the server seals secrets (SecretBox) and plaintext is never stored.
func EncodeWebhookConfig(cfg *orcheo.WebhookConfig) ([]byte, error) {
	if cfg == nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "webhook config is missing")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if v := cfg.Verify; v != nil && (v.Secret != "" || v.PreviousSecret != "") {
		return nil, orcheo.Errorf(orcheo.EINVALID, "webhook config: verify secrets must be sealed before they are stored")
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode webhook config: %w", err)
	}
	return raw, nil
}
