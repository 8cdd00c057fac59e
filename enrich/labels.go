package enrich

import "net/netip"

// Labels for addresses that are never looked up in a GeoIP database.
const (
	LabelPrivate       = "private"
	LabelLoopback      = "loopback"
	LabelCGNAT         = "cgnat"
	LabelDocumentation = "documentation"
	LabelLinkLocal     = "link-local"
	LabelMulticast     = "multicast"
	LabelUnspecified   = "unspecified"
	LabelReserved      = "reserved"
)

var (
	cgnat         = netip.MustParsePrefix("100.64.0.0/10")
	benchmarking  = netip.MustParsePrefix("198.18.0.0/15")
	reserved4     = netip.MustParsePrefix("240.0.0.0/4")
	thisNetwork   = netip.MustParsePrefix("0.0.0.0/8")
	documentation = []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("3fff::/20"),
	}
)

// Label returns the label of a special-purpose address (RFC 6890 and friends),
// or "" for an address worth looking up. IPv4-mapped IPv6 addresses are
// labelled as their IPv4 form.
func Label(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.IsUnspecified():
		return LabelUnspecified
	case ip.IsLoopback():
		return LabelLoopback
	case ip.IsPrivate():
		return LabelPrivate
	case ip.IsLinkLocalUnicast():
		return LabelLinkLocal
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return LabelMulticast
	}
	if ip.Is4() {
		switch {
		case cgnat.Contains(ip):
			return LabelCGNAT
		case benchmarking.Contains(ip), reserved4.Contains(ip), thisNetwork.Contains(ip):
			return LabelReserved
		}
	}
	for _, p := range documentation {
		if p.Contains(ip) {
			return LabelDocumentation
		}
	}
	return ""
}
