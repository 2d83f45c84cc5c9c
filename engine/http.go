package engine

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// HTTPOptions configures the http node's outbound calls. Zero fields take
// defaults.
type HTTPOptions struct {
	// AllowPrivate lets http nodes reach every address, including
	// loopback, private, link-local and other internal ones
	// (ORCHEO_HTTP_ALLOW_PRIVATE). Default false: only public addresses.
	AllowPrivate bool
	// AllowCIDRs lists internal networks http nodes may reach although
	// they are not public (ORCHEO_HTTP_ALLOW_CIDRS).
	AllowCIDRs []netip.Prefix
	// MaxResponseBytes bounds a response body; a larger one fails the
	// node. Default: DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// MaxRedirects bounds the redirects a node may follow, and is the
	// default of its max_redirects option. Default: DefaultMaxRedirects.
	MaxRedirects int
	// Timeout bounds a call of a node that sets no timeout of its own.
	// Default: DefaultHTTPTimeout.
	Timeout time.Duration
}

// Defaults of HTTPOptions.
const (
	DefaultMaxResponseBytes = 1 << 20
	DefaultMaxRedirects     = 5
	DefaultHTTPTimeout      = 30 * time.Second
)

// httpClient holds the shared transport of http nodes, whose dialer checks
// every address it connects to.
type httpClient struct {
	opts      HTTPOptions
	transport *http.Transport
}

func newHTTPClient(opts HTTPOptions) *httpClient {
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.MaxRedirects <= 0 {
		opts.MaxRedirects = DefaultMaxRedirects
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultHTTPTimeout
	}
	guard := &addressGuard{allowAll: opts.AllowPrivate, allow: opts.AllowCIDRs}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: guard.control}
	return &httpClient{
		opts: opts,
		transport: &http.Transport{
			// No proxy: a proxy would make the dialer check the proxy's
			// address instead of the target's.
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   10,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}

// addressGuard refuses connections to addresses that are not public,
// unless the operator allowed them. It runs as the dialer's Control hook,
// after DNS resolution, on the address actually dialled, so a name that
// resolves to an internal address (or is re-bound to one between two
// lookups) is refused as well, and so is every redirect target.
type addressGuard struct {
	allowAll bool
	allow    []netip.Prefix
}

// refusedError is the failure of a dial the guard refused.
type refusedError struct {
	addr   netip.Addr
	reason string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s addresses are not allowed (the operator can allow them with ORCHEO_HTTP_ALLOW_PRIVATE or ORCHEO_HTTP_ALLOW_CIDRS)", e.addr, e.reason)
}

func (g *addressGuard) control(network, address string, _ syscall.RawConn) error {
	if g.allowAll {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused to connect to %q: not an IP address", address)
	}
	addr := ap.Addr().WithZone("")
	reason := internalReason(addr)
	if reason == "" {
		return nil
	}
	for _, p := range g.allow {
		if p.Contains(addr) || p.Contains(addr.Unmap()) {
			return nil
		}
	}
	return &refusedError{addr: addr, reason: reason}
}

// nonPublic lists special-purpose ranges the net/netip predicates do not
// cover, with the word used in the error.
var nonPublic = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	// Local-use NAT64 (RFC 8215) translates into the operator's own
	// networks, at a prefix length only the operator knows.
	{netip.MustParsePrefix("64:ff9b:1::/48"), "translated (local NAT64)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// Prefixes of IPv6 forms that carry an IPv4 address, which internalReason
// checks as well: a public-looking IPv6 address must not lead to 127.0.0.1.
var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: the last 32 bits
	sixToFour    = netip.MustParsePrefix("2002::/16")    // RFC 3056: bits 16 to 47
	teredoPrefix = netip.MustParsePrefix("2001::/32")    // RFC 4380: server at bits 32 to 63, client inverted in the last 32
)

// embeddedIPv4 returns the IPv4 addresses an IPv6 address stands for in the
// IPv4-mapped, IPv4-compatible, NAT64, 6to4 and Teredo forms.
func embeddedIPv4(addr netip.Addr) []netip.Addr {
	if !addr.Is6() {
		return nil
	}
	b := addr.As16()
	last := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	switch {
	case addr.Is4In6(), nat64Prefix.Contains(addr):
		return []netip.Addr{last}
	case embeddedIPv4Only(addr):
		return []netip.Addr{last}
	case sixToFour.Contains(addr):
		return []netip.Addr{netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})}
	case teredoPrefix.Contains(addr):
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return []netip.Addr{netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]}), client}
	}
	return nil
}

// internalReason says why addr is not a public unicast address, or "" if
// it is one. An IPv6 form that carries an IPv4 address is judged by that
// address too ("loopback (IPv4 127.0.0.1 inside ::ffff:127.0.0.1)").
func internalReason(addr netip.Addr) string {
	if r := ownReason(addr); r != "" {
		return r
	}
	for _, v4 := range embeddedIPv4(addr) {
		if r := ownReason(v4); r != "" {
			return fmt.Sprintf("%s (IPv4 %s inside %s)", r, v4, addr)
		}
	}
	if embeddedIPv4Only(addr) {
		return "IPv4-compatible"
	}
	return ""
}

// embeddedIPv4Only reports the IPv4-compatible form (::a.b.c.d, deprecated
// by RFC 4291), which reaches the IPv4 address on some stacks, Linux among
// them. It is refused even around a public address: nothing legitimate
// dials it. :: and ::1 are judged before as unspecified and loopback.
func embeddedIPv4Only(addr netip.Addr) bool {
	return addr.Is6() && !addr.Is4In6() && netip.PrefixFrom(netip.IPv6Unspecified(), 96).Contains(addr)
}

// ownReason judges addr by its own ranges only.
func ownReason(addr netip.Addr) string {
	switch {
	case addr.IsLoopback():
		return "loopback"
	case addr.IsUnspecified():
		return "unspecified"
	case addr.IsPrivate():
		return "private"
	case addr.IsLinkLocalUnicast():
		return "link-local"
	case addr.IsMulticast(), addr.IsLinkLocalMulticast(), addr.IsInterfaceLocalMulticast():
		return "multicast"
	}
	if addr.Is4() && addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "broadcast"
	}
	if addr.Is4In6() {
		return "" // judged by its IPv4 address
	}
	for _, r := range nonPublic {
		if r.prefix.Contains(addr) {
			return r.reason
		}
	}
	return ""
}

// client returns an http.Client for one call that follows at most
// maxRedirects redirects.
func (c *httpClient) client(maxRedirects int) *http.Client {
	return &http.Client{
		Transport: c.transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return &redirectError{fmt.Sprintf("stopped after %d redirects", maxRedirects)}
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return &redirectError{fmt.Sprintf("redirect to unsupported scheme %q", req.URL.Scheme)}
			}
			return nil
		},
	}
}

// withDefaultTimeout bounds ctx by the default HTTP timeout unless the node
// has a timeout of its own (its ctx already has a deadline from it).
func (c *httpClient) withDefaultTimeout(ctx context.Context, nodeTimeout bool) (context.Context, context.CancelFunc) {
	if nodeTimeout {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, c.opts.Timeout, &timeoutError{scope: "node", d: c.opts.Timeout})
}

// redirectError is a redirect the node refused to follow; retrying would
// meet it again.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }
