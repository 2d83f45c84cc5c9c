package orcheo

import (
	"net"
	"net/netip"
)

// ClientKey is the address per-client limits count a request under (the
// API's caps on unauthenticated requests, a webhook's per-IP rate limit,
// the web UI's failed sign-ins): the IP of remoteAddr ("host:port", as in
// http.Request.RemoteAddr, or a bare host), or its /64 for IPv6, where
// one client easily holds a whole /64. Anything that is not an address
// counts as itself.
func ClientKey(remoteAddr string) string {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.WithZone("").Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}
