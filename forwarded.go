package orcheo

import "context"

// forwardedHTTPSKey marks a request's context as served over https by a
// trusted reverse proxy.
type forwardedHTTPSKey struct{}

// WithForwardedHTTPS returns ctx marked as that of a request a trusted
// reverse proxy served to its client over https (X-Forwarded-Proto from a
// peer in ORCHEO_HTTP_TRUSTED_PROXIES). Package server sets it; the web UI,
// which does not import server, reads it with ForwardedHTTPS.
func WithForwardedHTTPS(ctx context.Context) context.Context {
	return context.WithValue(ctx, forwardedHTTPSKey{}, true)
}

// ForwardedHTTPS reports whether WithForwardedHTTPS marked ctx.
func ForwardedHTTPS(ctx context.Context) bool {
	v, _ := ctx.Value(forwardedHTTPSKey{}).(bool)
	return v
}
