package parse

import (
	"bytes"
	"encoding/binary"
	"strings"
	"unicode/utf8"
)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isHex(c byte) bool   { return isDigit(c) || ((c|0x20) >= 'a' && (c|0x20) <= 'f') }
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 32
	}
	return c
}

func trimSpace(s []byte) []byte {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// eqFold reports whether s equals the ASCII string t, ignoring ASCII case.
func eqFold(s []byte, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if lower(s[i]) != lower(t[i]) {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether s starts with the ASCII string t, ignoring case.
func hasPrefixFold(s []byte, t string) bool {
	return len(s) >= len(t) && eqFold(s[:len(t)], t)
}

// Per-field length caps: a Fields string never exceeds these, so one absurd
// record cannot blow up a row or an alert.
const (
	maxShortField = 256  // method, user, service, host
	maxUAField    = 1024 // user agent
	maxPathField  = 2048 // path
)

// toString copies b into a string of at most max bytes, cut at a rune boundary,
// with invalid UTF-8 replaced by U+FFFD. The cap holds after the replacement too
// (one invalid byte becomes three bytes).
func toString(b []byte, max int) string {
	if len(b) <= max && utf8.Valid(b) {
		return string(b) // the common case
	}
	var sb strings.Builder
	sb.Grow(min(len(b), max))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		bad := r == utf8.RuneError && size == 1
		n := size
		if bad {
			n = len(string(utf8.RuneError))
		}
		if sb.Len()+n > max {
			break
		}
		if bad {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[:size])
		}
		b = b[size:]
	}
	return sb.String()
}

// isDash reports whether b is an empty-value marker of access logs.
func isDash(b []byte) bool { return len(b) == 1 && b[0] == '-' }

// isBinary reports whether b looks like binary data rather than text: a NUL byte
// anywhere, or more than 10% control bytes in its first 4 KiB.
func isBinary(b []byte) bool {
	if bytes.IndexByte(b, 0) >= 0 {
		return true
	}
	head := b
	if len(head) > 4096 {
		head = head[:4096]
	}
	if !hasControl(head) {
		return false // the common case, 8 bytes at a time
	}
	ctl := 0
	for _, c := range head {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x1b {
			ctl++
		}
	}
	return ctl*10 > len(head)
}

// hasControl reports whether b has a byte below 0x20 (SWAR: eight bytes per step).
func hasControl(b []byte) bool {
	const lo, hi = 0x2020202020202020, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if (x-lo)&^x&hi != 0 {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// stripQuery returns the path part of a request target: without query string or
// fragment, and for an absolute URL without scheme and authority (returned as host).
func stripQuery(b []byte) (path, host []byte) {
	for i, c := range b {
		if c == '?' || c == '#' {
			b = b[:i]
			break
		}
	}
	// Absolute form: scheme://authority/path.
	if i := indexStr(b, "://"); i > 0 && i < 16 && isAlphaWord(b[:i]) {
		rest := b[i+3:]
		j := 0
		for j < len(rest) && rest[j] != '/' {
			j++
		}
		host = rest[:j]
		if at := lastIndexByte(host, '@'); at >= 0 {
			host = host[at+1:] // drop userinfo: it may hold a password
		}
		b = rest[j:]
		if len(b) == 0 {
			b = []byte("/")
		}
	}
	return b, host
}

func indexStr(b []byte, s string) int { return bytes.Index(b, []byte(s)) }

func lastIndexByte(b []byte, c byte) int { return bytes.LastIndexByte(b, c) }

// stripHostPort removes a :port from a host name or [ipv6]:port authority.
func stripHostPort(b []byte) []byte {
	if len(b) > 0 && b[0] == '[' {
		if i := lastIndexByte(b, ']'); i > 0 {
			return b[1:i]
		}
		return b
	}
	i := lastIndexByte(b, ':')
	if i < 0 {
		return b
	}
	// More than one colon: a bare IPv6 address, leave it.
	for j := 0; j < i; j++ {
		if b[j] == ':' {
			return b
		}
	}
	for _, c := range b[i+1:] {
		if !isDigit(c) {
			return b
		}
	}
	return b[:i]
}

// isMethod reports whether b is an HTTP method token (upper-case letters, 3-10).
func isMethod(b []byte) bool {
	if len(b) < 3 || len(b) > 10 {
		return false
	}
	for _, c := range b {
		if (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// knownMethod reports whether b is one of the common HTTP methods, for finding a
// request line inside free text, where isMethod would match any capitalised word.
func knownMethod(b []byte) bool {
	switch string(b) {
	case "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PROPFIND":
		return true
	}
	return false
}

// parseStatus parses an HTTP status code (100-999) from b.
func parseStatus(b []byte) int {
	b = trimSpace(b)
	if len(b) != 3 {
		return 0
	}
	n, ok := atoiN(b)
	if !ok || n < 100 {
		return 0
	}
	return n
}
