package metrics

import "github.com/prometheus/client_golang/prometheus"

// WebhookRefusalReasons are the reasons the server gives for refusing a
// webhook request of a trigger it found (server.Server.OnWebhookRefused).
var WebhookRefusalReasons = []string{"required", "verify", "replay", "rate_limit", "rate_limit_ip"}

// Webhooks counts refused webhook requests. Safe for concurrent use.
type Webhooks struct {
	refused *prometheus.CounterVec
}

// NewWebhooks registers the webhook counters on reg, every reason at zero.
func NewWebhooks(reg prometheus.Registerer) *Webhooks {
	m := &Webhooks{refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "webhook_refused_total",
		Help: "Webhook requests refused after their trigger was found: a required header or query value (required), a signature, secret or timestamp (verify), a replay, the workflow's or an address's rate limit.",
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
