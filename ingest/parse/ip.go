package parse

import (
	"net/netip"
)

// parseIP parses a client address as logs write it: 203.0.113.9, 203.0.113.9:443,
// 2001:db8::1, [2001:db8::1]:443, [::1], fe80::1%eth0, with surrounding quotes or
// spaces. IPv4-mapped IPv6 addresses are unmapped and zones dropped.
func parseIP(b []byte) (netip.Addr, bool) {
	b = trimSpace(b)
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = trimSpace(b[1 : len(b)-1])
	}
	if len(b) < 2 || len(b) > 64 {
		return netip.Addr{}, false
	}
	if b[0] == '[' {
		end := lastIndexByte(b, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		// Anything after ']' must be :port.
		if end+1 < len(b) && !isPort(b[end+1:]) {
			return netip.Addr{}, false
		}
		b = b[1:end]
	} else if a, ok := parseIPv4(b); ok {
		return a, true
	} else {
		colons := 0
		last := -1
		for i, c := range b {
			if c == ':' {
				colons++
				last = i
			}
		}
		if colons == 1 {
			if !isPort(b[last:]) {
				return netip.Addr{}, false
			}
			b = b[:last]
			if a, ok := parseIPv4(b); ok {
				return a, true
			}
		}
	}
	// IPv6 (or anything else netip understands). Check the alphabet first so free
	// text never reaches the allocating parser.
	zone := false
	for _, c := range b {
		switch {
		case c == '%':
			zone = true
		case zone && (isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == '.'):
		case !zone && (isHex(c) || c == ':' || c == '.'):
		default:
			return netip.Addr{}, false
		}
	}
	a, err := netip.ParseAddr(string(b))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// isPort reports whether b is ":" followed by 1-5 digits.
func isPort(b []byte) bool {
	if len(b) < 2 || len(b) > 6 || b[0] != ':' {
		return false
	}
	for _, c := range b[1:] {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// parseIPv4 parses dotted-quad IPv4 without allocating. Leading zeros are
// rejected, as netip does.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var ip [4]byte
	n := 0
	for i := 0; i < 4; i++ {
		if i > 0 {
			if n >= len(b) || b[n] != '.' {
				return netip.Addr{}, false
			}
			n++
		}
		start := n
		v := 0
		for n < len(b) && isDigit(b[n]) && n-start < 3 {
			v = v*10 + int(b[n]-'0')
			n++
		}
		if n == start || v > 255 || (n-start > 1 && b[start] == '0') {
			return netip.Addr{}, false
		}
		ip[i] = byte(v)
	}
	if n != len(b) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

// trusted reports whether a belongs to a configured trusted proxy.
func (p *Parser) trusted(a netip.Addr) bool {
	for _, pfx := range p.trustedProxies {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// resolveClient applies trusted-proxy handling. peer is the direct peer (the TCP
// source address as the logging proxy saw it; invalid when the record has none),
// xff the X-Forwarded-For value(s) and fwd the RFC 7239 Forwarded value.
//
//   - peer known and not trusted: peer is the client, forwarding headers are ignored
//     (anyone can send them);
//   - peer trusted (or unknown): walk X-Forwarded-For (else Forwarded) from the right,
//     skipping trusted proxies; the first untrusted address is the client. An
//     unparsable entry stops the walk at the last good address; if every entry is
//     trusted, the leftmost is the client.
func (p *Parser) resolveClient(peer netip.Addr, xff, fwd []byte) netip.Addr {
	if peer.IsValid() && !p.trusted(peer) {
		return peer
	}
	cur := peer
	if len(trimSpace(xff)) > 0 {
		return p.walkXFF(cur, xff)
	}
	if len(trimSpace(fwd)) > 0 {
		return p.walkForwarded(cur, fwd)
	}
	return cur
}

// walkXFF walks a comma-separated X-Forwarded-For list from the right.
func (p *Parser) walkXFF(cur netip.Addr, xff []byte) netip.Addr {
	end := len(xff)
	for end > 0 {
		start := lastIndexByte(xff[:end], ',')
		entry := trimEntry(xff[start+1 : end])
		end = start
		if start < 0 {
			end = 0
		}
		if len(entry) == 0 {
			continue // "a,,b" or a trailing comma
		}
		a, ok := parseIP(entry)
		if !ok {
			return cur
		}
		cur = a
		if !p.trusted(a) {
			return a
		}
	}
	return cur
}

// trimEntry trims spaces and stray quotes around one X-Forwarded-For entry (a
// JSON array of header values is walked as one list: "a, b", "c").
func trimEntry(b []byte) []byte {
	b = trimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		b = b[1:]
	}
	if len(b) > 0 && b[len(b)-1] == '"' {
		b = b[:len(b)-1]
	}
	return trimSpace(b)
}

// walkForwarded walks the for= parameters of an RFC 7239 Forwarded header from the
// right.
func (p *Parser) walkForwarded(cur netip.Addr, fwd []byte) netip.Addr {
	end := len(fwd)
	for end > 0 {
		start := lastIndexByte(fwd[:end], ',')
		elem := fwd[start+1 : end]
		end = start
		if start < 0 {
			end = 0
		}
		v, found := forwardedFor(elem)
		if !found {
			continue
		}
		a, ok := parseIP(v)
		if !ok {
			return cur // "unknown", an obfuscated "_hidden" node, or garbage
		}
		cur = a
		if !p.trusted(a) {
			return a
		}
	}
	return cur
}

// forwardedFor returns the value of the for= pair of one Forwarded element, quotes
// removed.
func forwardedFor(elem []byte) ([]byte, bool) {
	for len(elem) > 0 {
		i := 0
		for i < len(elem) && elem[i] != ';' {
			i++
		}
		pair := trimSpace(elem[:i])
		if i < len(elem) {
			elem = elem[i+1:]
		} else {
			elem = nil
		}
		if len(pair) > 4 && hasPrefixFold(pair, "for=") {
			v := trimSpace(pair[4:])
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return nil, false
}
