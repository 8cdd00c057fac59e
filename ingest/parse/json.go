package parse

import (
	"bytes"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting; deeper records are malformed (reason json_depth).
const maxJSONDepth = 128

// Malformed reasons (label values of tokenwatch_ingest_records_malformed_total).
const (
	reasonJSONSyntax   = "json_syntax"
	reasonJSONDepth    = "json_depth"
	reasonJSONTrailing = "json_trailing"
	reasonInvalidUTF8  = "invalid_utf8"
	reasonBinary       = "binary"
	reasonSyslog       = "syslog"
	reasonRevocation   = "revocation"
	reasonNoFP         = "revocation_no_fingerprinter"
	reasonInternal     = "internal"
)

// value is a scalar found by a key-based parser. b aliases the record.
type value struct {
	b    []byte
	prio uint8 // 0: unset
	str  bool  // a JSON string (b is the content between the quotes)
	esc  bool  // b holds backslash escapes
}

// collected are the values a key-based parser picked from one record.
type collected struct {
	vals          [numFields]value
	markers       marker
	headersLogged bool
	dpopSeen      bool
}

// set stores v for f unless a value of higher priority is already there. Empty
// strings and "-" are absent values.
func (c *collected) set(f field, prio uint8, v value) {
	if f == fDPoP {
		c.dpopSeen = true // even null or "": the field is logged, the header was absent
	}
	if len(v.b) == 0 || isDash(v.b) || (!v.str && (string(v.b) == "null" || string(v.b) == "false")) {
		return
	}
	cur := &c.vals[f]
	if cur.prio == 0 || prio < cur.prio {
		v.prio = prio
		*cur = v
	}
}

// override stores v for f unless a value of strictly higher priority is there.
func (c *collected) override(f field, prio uint8, v value) {
	cur := &c.vals[f]
	if cur.prio == 0 || prio <= cur.prio {
		v.prio = prio
		*cur = v
	}
}

// xffListPrio returns the priority of an array at path that holds
// X-Forwarded-For values, or 0.
func xffListPrio(keys map[string]keyInfo, path []byte, seg int, inHeaders bool) uint8 {
	if inHeaders {
		if headerField(path[seg:]) == fXFF {
			return hdrPrio
		}
		return 0
	}
	if ki, ok := keys[string(path)]; ok && ki.field == fXFF {
		return ki.prio
	}
	return 0
}

// get returns the value of f, unescaped when needed (into a new slice).
func (c *collected) get(f field) []byte {
	v := &c.vals[f]
	if v.prio == 0 {
		return nil
	}
	if v.esc {
		v.b = appendUnescaped(make([]byte, 0, len(v.b)), v.b)
		v.esc = false
	}
	return v.b
}

type jsonFrame struct {
	restore   int32 // path length to restore when the container closes
	seg       int32 // start of the container's own key segment in path
	arr       bool
	headers   bool // a request-headers object, or an array directly inside one
	untracked bool // under a key path too long to look up
	// listPrio > 0: an array holding X-Forwarded-For values (several headers, as Go's
	// http.Header logs them); on close its whole span becomes the value, so the
	// walk from the right sees every entry, not only the first.
	listPrio  uint8
	listStart int32
}

// walkJSON scans the JSON object in data once, iteratively (no recursion, so depth
// costs no stack), and collects the scalars whose key paths are in keys. It never
// builds a map: a 10 MB record costs one linear pass and no allocation. It returns
// "" for a well-formed object, else a malformed reason; the values collected
// before the error are kept.
func walkJSON(data []byte, keys map[string]keyInfo, c *collected) string {
	var stack [maxJSONDepth]jsonFrame
	var pathBuf [maxKeyPath + 8]byte
	path := pathBuf[:0]

	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return reasonJSONSyntax
	}
	stack[0] = jsonFrame{}
	depth := 1
	i++

	const (
		stKey = iota
		stValue
		stAfter
	)
	state := stKey
	first := true      // at the first key of an object (so '}' may close it)
	restore := 0       // path length to restore after the current value
	seg := 0           // start of the current value's key segment in path
	untracked := false // the current value's path is not tracked

	for {
		i = skipWS(data, i)
		if i >= len(data) {
			return reasonJSONSyntax
		}
		top := &stack[depth-1]
		closing := false
		switch state {
		case stKey:
			if data[i] == '}' && first {
				i++
				closing = true
				break
			}
			first = false
			if data[i] != '"' {
				return reasonJSONSyntax
			}
			end, esc, ok := scanString(data, i)
			if !ok {
				return reasonJSONSyntax
			}
			key := data[i+1 : end-1]
			i = skipWS(data, end)
			if i >= len(data) || data[i] != ':' {
				return reasonJSONSyntax
			}
			i++
			restore = len(path)
			untracked = top.untracked || len(path)+1+len(key) > maxKeyPath
			if !untracked {
				if len(path) > 0 {
					path = append(path, '.')
				}
				seg = len(path)
				if esc {
					path = appendUnescaped(path, key)
				} else {
					path = append(path, key...)
				}
				if len(path) > maxKeyPath {
					path = path[:restore]
					untracked = true
				}
				for j := seg; j < len(path); j++ {
					path[j] = lower(path[j])
				}
			}
			state = stValue

		case stValue:
			switch ch := data[i]; ch {
			case '{', '[':
				if ch == '[' {
					if j := skipWS(data, i+1); j < len(data) && data[j] == ']' {
						i = j + 1 // empty array: no frame needed
						path = path[:restore]
						state = stAfter
						continue
					}
				}
				if depth == maxJSONDepth {
					return reasonJSONDepth
				}
				f := jsonFrame{arr: ch == '[', restore: int32(restore), seg: int32(seg), untracked: untracked}
				if !untracked {
					if ch == '{' {
						f.headers = isHeaderObject(path, seg)
						if f.headers {
							// Request headers are logged: a missing DPoP header now means something.
							c.headersLogged = true
						}
					} else {
						f.headers = top.headers && !top.arr
						f.listPrio = xffListPrio(keys, path, seg, f.headers)
						f.listStart = int32(i + 1)
					}
				}
				stack[depth] = f
				depth++
				i++
				if f.arr {
					restore, untracked = len(path), f.untracked
				} else {
					state = stKey
					first = true
				}
				continue
			case '"':
				end, esc, ok := scanString(data, i)
				if !ok {
					return reasonJSONSyntax
				}
				if !untracked {
					visit(keys, c, path, seg, top, value{b: data[i+1 : end-1], str: true, esc: esc})
				}
				i = end
			default:
				end := i
				for end < len(data) && !isDelim(data[end]) {
					end++
				}
				lit := data[i:end]
				if !validLiteral(lit) {
					return reasonJSONSyntax
				}
				if !untracked {
					visit(keys, c, path, seg, top, value{b: lit})
				}
				i = end
			}
			path = path[:restore]
			state = stAfter

		case stAfter:
			switch data[i] {
			case ',':
				i++
				if top.arr {
					restore, untracked = len(path), top.untracked
					state = stValue
				} else {
					state = stKey
				}
			case '}':
				if top.arr {
					return reasonJSONSyntax
				}
				i++
				closing = true
			case ']':
				if !top.arr {
					return reasonJSONSyntax
				}
				i++
				closing = true
			default:
				return reasonJSONSyntax
			}
		}
		if !closing {
			continue
		}
		f := stack[depth-1]
		depth--
		if f.listPrio > 0 {
			c.override(fXFF, f.listPrio, value{b: data[f.listStart : i-1]})
		}
		if depth == 0 {
			if j := skipWS(data, i); j < len(data) {
				return reasonJSONTrailing
			}
			return ""
		}
		path = path[:f.restore]
		seg = int(f.seg)
		state = stAfter
	}
}

// isHeaderObject reports whether the key segment path[seg:] names an object of
// request headers ("headers" not under a response).
func isHeaderObject(path []byte, seg int) bool {
	name := path[seg:]
	if !headerObjectNames[string(name)] {
		return false
	}
	if string(name) == "headers" && seg > 1 {
		parent := path[:seg-1]
		if i := lastIndexByte(parent, '.'); i >= 0 {
			parent = parent[i+1:]
		}
		switch string(parent) {
		case "response", "resp", "res", "http.response":
			return false
		}
	}
	return true
}

// visit looks a scalar's key path up and records it.
func visit(keys map[string]keyInfo, c *collected, path []byte, seg int, top *jsonFrame, v value) {
	if top.headers {
		c.headersLogged = true
		if f := headerField(path[seg:]); f != fNone {
			// Header values rank below explicit fields of the record.
			c.set(f, hdrPrio, v)
		}
	}
	ki, ok := keys[string(path)]
	if !ok {
		return
	}
	c.markers |= ki.marker
	if ki.field != fNone {
		c.set(ki.field, ki.prio, v)
	}
}

// hdrPrio is the priority of values taken from a request-headers object: below
// the record's own keys, above machine names.
const hdrPrio = 200

// headerField maps a header name (lower case; '_' read as '-') to its field.
func headerField(name []byte) field {
	var buf [64]byte
	if len(name) > len(buf) {
		return fNone
	}
	n := copy(buf[:], name)
	for j := 0; j < n; j++ {
		if buf[j] == '_' {
			buf[j] = '-'
		}
	}
	return headerFields[string(buf[:n])]
}

// scanString returns the index just past the closing quote of the JSON string
// starting at data[i] == '"', and whether it holds escapes. Linear: a quote ends the
// string unless an odd run of backslashes precedes it, and each run is counted once.
func scanString(data []byte, i int) (end int, esc bool, ok bool) {
	// Most keys and values are short: a plain loop beats two IndexByte calls.
	for j := i + 1; j < len(data) && j < i+48; j++ {
		if c := data[j]; c == '"' {
			return j + 1, false, true
		} else if c == '\\' {
			break
		}
	}
	j := i + 1
	for {
		q := bytes.IndexByte(data[j:], '"')
		if q < 0 {
			return 0, false, false
		}
		q += j
		n := 0
		for k := q - 1; k > i && data[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, bytes.IndexByte(data[i+1:q], '\\') >= 0, true
		}
		j = q + 1
	}
}

func skipWS(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

func isDelim(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ':' || isSpace(c)
}

// validLiteral accepts JSON numbers, true, false and null (numbers loosely: the
// character set is checked, not the grammar).
func validLiteral(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch string(b) {
	case "true", "false", "null":
		return true
	}
	if b[0] != '-' && !isDigit(b[0]) {
		return false
	}
	for _, c := range b {
		if !isDigit(c) && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-' {
			return false
		}
	}
	return true
}

// appendUnescaped appends the JSON string content s with escapes decoded. It is
// lenient: nginx's \xHH escapes are decoded too, and bad escapes become U+FFFD.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(dst, s[i:]...)
			}
			dst = append(dst, s[i:i+j]...)
			i += j
			continue
		}
		if i+1 >= len(s) {
			return utf8.AppendRune(dst, utf8.RuneError)
		}
		e := s[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'x':
			if i+2 <= len(s) && isHex(s[i]) && isHex(s[i+1]) {
				dst = append(dst, unhex(s[i])<<4|unhex(s[i+1]))
				i += 2
			} else {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			}
		case 'u':
			r, ok := hex4(s[i:])
			if !ok {
				dst = utf8.AppendRune(dst, utf8.RuneError)
				continue
			}
			i += 4
			if r >= 0xD800 && r < 0xDC00 {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2, ok := hex4(s[i+2:]); ok && r2 >= 0xDC00 && r2 < 0xE000 {
						r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			} else if r >= 0xDC00 && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		}
	}
	return dst
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		if !isHex(c) {
			return 0, false
		}
		r = r<<4 | rune(unhex(c))
	}
	return r, true
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
