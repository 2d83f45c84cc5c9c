package metrics

import "github.com/prometheus/client_golang/prometheus"

// WebhookRefusalReasons are the reasons the server gives for refusing a
// webhook request (server.Server.OnWebhookRefused): no trigger to fire
// (not_found, disabled, archived), a method it does not accept, a body
// over the limit (too_large) or unreadable or malformed (bad_request), a
// required header or query value, a signature, secret or timestamp
// (verify), a replay, a rate limit, and a dependency down (unavailable).
var WebhookRefusalReasons = []string{"not_found", "disabled", "archived", "method", "too_large", "bad_request",
	"required", "verify", "replay", "rate_limit", "rate_limit_ip", "unavailable"}

// Webhooks counts refused webhook requests. Safe for concurrent use.
type Webhooks struct {
	refused *prometheus.CounterVec
}

// NewWebhooks registers the webhook counters on reg, every reason at zero.
func NewWebhooks(reg prometheus.Registerer) *Webhooks {
	m := &Webhooks{refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "webhook_refused_total",
		Help: "Webhook requests refused, by reason: no trigger to fire (not_found, disabled, archived), method, too_large, bad_request, a required header or query value (required), a signature, secret or timestamp (verify), a replay, the workflow's or an address's rate limit, a dependency down (unavailable).",
	}, []string{"reason"})}
	reg.MustRegister(m.refused)
	for _, r := range WebhookRefusalReasons {
		m.refused.WithLabelValues(r)
	}
	return m
}

// Refused counts one refusal; an unknown reason counts as "verify".
func (m *Webhooks) Refused(reason string) {
	for _, r := range WebhookRefusalReasons {
		if r == reason {
			m.refused.WithLabelValues(reason).Inc()
			return
		}
	}
	m.refused.WithLabelValues("verify").Inc()
}
