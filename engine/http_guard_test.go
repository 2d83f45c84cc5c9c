package engine

import (
	"net/netip"
	"strings"
	"testing"
)

// TestInternalReason_EmbeddedIPv4: every IPv6 form that carries an IPv4
// address is judged by that address, so none of them leads to loopback,
// private or metadata addresses; public ones in translating forms pass.
func TestInternalReason_EmbeddedIPv4(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		want string // "" = public
	}{
		{"::127.0.0.1", "loopback"},      // IPv4-compatible
		{"::10.1.2.3", "private"},        // IPv4-compatible
		{"::8.8.8.8", "IPv4-compatible"}, // deprecated form: refused whatever it holds
		{"::ffff:127.0.0.1", "loopback"}, // IPv4-mapped
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::127.0.0.1", "loopback"},   // NAT64 well-known prefix
		{"64:ff9b::a9fe:a9fe", "link-local"}, // 169.254.169.254
		{"64:ff9b::8.8.8.8", ""},
		{"64:ff9b:1::8.8.8.8", "translated (local NAT64)"},
		{"2002:7f00:1::", "loopback"},             // 6to4 of 127.0.0.1
		{"2002:c0a8:101::1", "private"},           // 6to4 of 192.168.1.1
		{"2002:808:808::1", ""},                   // 6to4 of 8.8.8.8
		{"2001:0:7f00:1::1", "loopback"},          // Teredo server 127.0.0.1
		{"2001:0:808:808::80ff:fefe", "loopback"}, // Teredo client ^0x80fffefe = 127.0.1.1
		{"2001:0:808:808::f7f7:f7f7", ""},         // Teredo client 8.8.8.8
		{"fec0::1", "site-local"},
		{"2001:db8::1", "documentation"},
		{"::1", "loopback"},
		{"::", "unspecified"},
		{"2606:4700::1111", ""},
		{"127.0.0.1", "loopback"},
	} {
		got := internalReason(netip.MustParseAddr(tc.addr))
		if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) {
			t.Errorf("internalReason(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// TestAddressGuard_IPv6Forms dials through the guard's Control hook as the
// transport would, and the allow-list matches the embedded address as
// well as the IPv6 one.
func TestAddressGuard_IPv6Forms(t *testing.T) {
	t.Parallel()
	strict := &addressGuard{}
	for _, a := range []string{"[::127.0.0.1]:8080", "[::ffff:127.0.0.1]:80", "[64:ff9b::7f00:1]:80", "[2002:7f00:1::1]:80", "[fe80::1%eth0]:80"} {
		if err := strict.control("tcp6", a, nil); err == nil || !strings.Contains(err.Error(), "refused to connect") {
			t.Errorf("control(%s) = %v, want a refusal", a, err)
		}
	}
	allowed := &addressGuard{allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if err := allowed.control("tcp6", "[::ffff:10.1.2.3]:80", nil); err != nil {
		t.Errorf("allow-listed 10.0.0.0/8 refused its IPv4-mapped form: %v", err)
	}
	if err := allowed.control("tcp6", "[::ffff:192.168.1.1]:80", nil); err == nil {
		t.Error("192.168.1.1 passed an allow-list of 10.0.0.0/8")
	}
}
