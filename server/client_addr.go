package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/orcheo/orcheo"
)

// ParseTrustedProxies reads ORCHEO_HTTP_TRUSTED_PROXIES: a comma-separated
// list of IP addresses and CIDRs ("10.0.0.0/8, 127.0.0.1, ::1"). An address
// is a prefix of its full length. The error names the first entry that is
// neither.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		p, err := parseTrustedProxy(entry)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or a CIDR such as 10.0.0.0/8", entry)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseTrustedProxy(entry string) (netip.Prefix, error) {
	if strings.Contains(entry, "/") {
		p, err := netip.ParsePrefix(entry)
		if err != nil {
			return netip.Prefix{}, err
		}
		// An IPv4-mapped prefix (::ffff:10.0.0.0/104) is the IPv4 one:
		// peers are compared unmapped.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(entry)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("not an address")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// isTrustedProxy reports whether ip is in one of trusted.
func isTrustedProxy(trusted []netip.Prefix, ip netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedClient walks the X-Forwarded-For chain of a request whose TCP
// peer is a trusted proxy: every header, each a comma list, the nearest hop
// last. The client is the rightmost address that is not itself a trusted
// proxy (anything left of it was written by the client and may be forged);
// if every hop is trusted, the leftmost. An entry the walk cannot read
// stops it with ok false: the caller keeps the peer, never trusting
// garbage.
//
// It walks from the right without splitting the chain up front, so a long
// header costs only the hops read up to the client.
func forwardedClient(trusted []netip.Prefix, forwardedFor []string) (client netip.Addr, ok bool) {
	for h := len(forwardedFor) - 1; h >= 0; h-- {
		rest := forwardedFor[h]
		for {
			hop, first := rest, true
			if i := strings.LastIndexByte(rest, ','); i >= 0 {
				hop, rest, first = rest[i+1:], rest[:i], false
			}
			ip, ok := parseForwardedHop(hop)
			if !ok {
				return netip.Addr{}, false
			}
			if !isTrustedProxy(trusted, ip) || (first && h == 0) {
				return ip, true
			}
			if first {
				break
			}
		}
	}
	return netip.Addr{}, false // no hops
}

// parseForwardedHop reads one X-Forwarded-For entry: an IP address, or
// one with a port (1.2.3.4:80, [2001:db8::1]:80), as some proxies write.
func parseForwardedHop(hop string) (netip.Addr, bool) {
	hop = strings.Trim(hop, " \t")
	ip, err := netip.ParseAddr(hop)
	if err != nil {
		ap, err := netip.ParseAddrPort(hop)
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	if ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// forwardedHTTPS reports whether the nearest proxy says it served the
// request over https: the last X-Forwarded-Proto value, since a proxy that
// appends rather than sets the header leaves the client's own in front.
func forwardedHTTPS(r *http.Request) bool {
	values := r.Header.Values("X-Forwarded-Proto")
	if len(values) == 0 {
		return false
	}
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.Trim(last, " \t"), "https")
}

// resolveClient is the one place the client of a request is decided, so
// every consumer (the per-address caps, the webhook's per-IP rate limit and
// source_ip, the logs, the UI's sign-in limiter) reads r.RemoteAddr alone.
// From a peer in TrustedProxies it rewrites RemoteAddr to the client the
// X-Forwarded-For chain names (forwardedClient), keeping the peer's port,
// and marks X-Forwarded-Proto: https with orcheo.WithForwardedHTTPS. From
// any other peer, and while TrustedProxies is empty, those headers change
// nothing.
func (s *Server) resolveClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.TrustedProxies) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !isTrustedProxy(s.TrustedProxies, peer.Addr().Unmap()) {
			next.ServeHTTP(w, r)
			return
		}
		https := forwardedHTTPS(r)
		forwardedFor := r.Header.Values("X-Forwarded-For")
		client, ok := netip.Addr{}, false
		if len(forwardedFor) > 0 {
			client, ok = forwardedClient(s.TrustedProxies, forwardedFor)
		}
		if !ok && !https {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		if https {
			ctx = orcheo.WithForwardedHTTPS(ctx)
		}
		r = r.WithContext(ctx) // a copy: the caller's request keeps its peer
		if ok {
			r.RemoteAddr = net.JoinHostPort(client.String(), strconv.Itoa(int(peer.Port())))
		}
		next.ServeHTTP(w, r)
	})
}
