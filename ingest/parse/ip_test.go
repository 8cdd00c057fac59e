package parse

import (
	"net/netip"
	"testing"
)

func TestParseIP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"203.0.113.9", "203.0.113.9"},
		{"203.0.113.9:443", "203.0.113.9"},
		{" \"203.0.113.9\" ", "203.0.113.9"},
		{"2001:db8::1", "2001:db8::1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[::1]", "::1"},
		{"[::1]:8080", "::1"},
		{"::ffff:203.0.113.9", "203.0.113.9"},
		{"[::ffff:203.0.113.9]:80", "203.0.113.9"},
		{"fe80::1%eth0", "fe80::1"},
		{"0.0.0.0", "0.0.0.0"},
		{"255.255.255.255", "255.255.255.255"},
		// Not addresses
		{"", ""},
		{"-", ""},
		{"unknown", ""},
		{"256.1.1.1", ""},
		{"01.2.3.4", ""},
		{"1.2.3", ""},
		{"1.2.3.4.5", ""},
		{"1.2.3.4:", ""},
		{"1.2.3.4:port", ""},
		{"1.2.3.4:1234567", ""},
		{"[2001:db8::1", ""},
		{"[2001:db8::1]x", ""},
		{"api.example.com", ""},
		{"api.example.com:443", ""},
		{"_hidden", ""},
		{"2001:db8::g", ""},
		{"1.2.3.4 5.6.7.8", ""},
	}
	for _, tc := range tests {
		got, ok := parseIP([]byte(tc.in))
		if tc.want == "" {
			if ok {
				t.Errorf("parseIP(%q) = %v, want failure", tc.in, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(tc.want) {
			t.Errorf("parseIP(%q) = %v, %v; want %s", tc.in, got, ok, tc.want)
		}
	}
}

func TestResolveClientXFF(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TrustedProxies = []string{"10.0.0.0/8", "2001:db8:ffff::/48", "198.51.100.10"}
	p := newTestParser(t, cfg)
	tests := []struct {
		name, peer, xff, fwd, want string
	}{
		{"no headers", "203.0.113.1", "", "", "203.0.113.1"},
		{"untrusted peer ignores xff", "203.0.113.1", "192.0.2.1", "", "203.0.113.1"},
		{"trusted peer, one hop", "10.0.0.1", "192.0.2.1", "", "192.0.2.1"},
		{"client spoofs left entries", "10.0.0.1", "6.6.6.6, 192.0.2.1", "", "192.0.2.1"},
		{"chain of trusted proxies", "10.0.0.1", "192.0.2.1, 198.51.100.10, 10.9.9.9", "", "192.0.2.1"},
		{"all trusted: leftmost", "10.0.0.1", "10.1.1.1, 10.2.2.2", "", "10.1.1.1"},
		{"garbage stops the walk", "10.0.0.1", "192.0.2.1, unknown, 10.2.2.2", "", "10.2.2.2"},
		{"garbage right after peer", "10.0.0.1", "192.0.2.1, bogus", "", "10.0.0.1"},
		{"empty entries skipped", "10.0.0.1", " , 192.0.2.1,, ", "", "192.0.2.1"},
		{"ports and brackets", "10.0.0.1", "[2001:db8::5]:1234, 10.0.0.2:80", "", "2001:db8::5"},
		{"ipv6 proxy", "2001:db8:ffff::1", "2001:db8:1::7", "", "2001:db8:1::7"},
		{"unknown peer walks xff", "", "192.0.2.1, 10.0.0.3", "", "192.0.2.1"},
		{"unknown peer, no headers", "", "", "", ""},
		{"unknown peer, garbage xff", "", "nope", "", ""},
		{"forwarded", "10.0.0.1", "", `for=192.0.2.60;proto=http;by=203.0.113.43`, "192.0.2.60"},
		{"forwarded chain", "10.0.0.1", "", `for=192.0.2.60, for="[2001:db8:cafe::17]:4711", For=10.0.0.9`, "2001:db8:cafe::17"},
		{"forwarded obfuscated", "10.0.0.1", "", `for=192.0.2.60, for=_hidden`, "10.0.0.1"},
		{"forwarded element without for", "10.0.0.1", "", `proto=https, for=192.0.2.61;host=x`, "192.0.2.61"},
		{"xff preferred over forwarded", "10.0.0.1", "192.0.2.1", "for=192.0.2.2", "192.0.2.1"},
		{"untrusted peer ignores forwarded", "192.0.2.200", "", "for=192.0.2.2", "192.0.2.200"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var peer netip.Addr
			if tc.peer != "" {
				peer = netip.MustParseAddr(tc.peer)
			}
			got := p.resolveClient(peer, []byte(tc.xff), []byte(tc.fwd))
			want := netip.Addr{}
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			if got != want {
				t.Errorf("resolveClient(%s, %q, %q) = %v, want %v", tc.peer, tc.xff, tc.fwd, got, want)
			}
		})
	}
}

func TestFirstIP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"login from 203.0.113.9 failed", "203.0.113.9"},
		{"peer=203.0.113.9:5100 ok", "203.0.113.9"},
		{"connect [2001:db8::9]:443 ok", "2001:db8::9"},
		{"from 2001:db8::9.", "2001:db8::9"},
		{"at 08:14:06 from 198.51.100.1", "198.51.100.1"},
		{"version v1.2.3.4 build", ""},
		{"uuid 5d1c5b1e-1111-2222-3333-444455556666", ""},
		{"mac 00:1a:2b:3c:4d:5e", ""},
		{"sha deadbeefcafe", ""},
		{"no address here", ""},
		{"bind :: only", ""},
	}
	for _, tc := range tests {
		got, ok := firstIP([]byte(tc.in))
		if tc.want == "" {
			if ok {
				t.Errorf("firstIP(%q) = %v, want none", tc.in, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(tc.want) {
			t.Errorf("firstIP(%q) = %v, %v; want %s", tc.in, got, ok, tc.want)
		}
	}
}

func TestParseIPv4NoAlloc(t *testing.T) {
	b := []byte("203.0.113.9:443")
	if n := testing.AllocsPerRun(100, func() { _, _ = parseIP(b) }); n != 0 {
		t.Errorf("parseIP of IPv4 allocates %v times", n)
	}
}
