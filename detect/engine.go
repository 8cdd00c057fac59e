package detect

import (
	"bytes"

	"github.com/tokenwatch/tokenwatch"
)

// Character classes of the validators.
const (
	cAlnum  uint8 = 1 << iota
	cB64          // base64 segment bytes, both alphabets: A-Z a-z 0-9 - _ + /
	cTok          // opaque token value bytes: A-Z a-z 0-9 - . _ ~ + / =
	cKey          // key name bytes: A-Z a-z 0-9 _ - .
	cCookie       // cookie value bytes: cTok plus ':' (connect.sid "s:…" values)
	cUpper
	cLower
	cDigit
)

var cls = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		switch {
		case b >= 'A' && b <= 'Z':
			t[c] |= cAlnum | cB64 | cTok | cKey | cCookie | cUpper
		case b >= 'a' && b <= 'z':
			t[c] |= cAlnum | cB64 | cTok | cKey | cCookie | cLower
		case b >= '0' && b <= '9':
			t[c] |= cAlnum | cB64 | cTok | cKey | cCookie | cDigit
		}
	}
	for _, b := range []byte("-_+/") {
		t[b] |= cB64
	}
	for _, b := range []byte("-._~+/=") {
		t[b] |= cTok | cCookie
	}
	for _, b := range []byte("_-.") {
		t[b] |= cKey
	}
	t[':'] |= cCookie
	return t
}()

func isAlnum(c byte) bool { return cls[c]&cAlnum != 0 }

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// escAt decodes an escape at line[i]: %XX (URL encoding), %25XX (double URL
// encoding), \/ (JSON) or \u00XX (JSON, ASCII only). It returns the escape length (0 if none) and the byte.
func escAt(line []byte, i int) (int, byte) {
	if i >= len(line) {
		return 0, 0
	}
	switch line[i] {
	case '%':
		// %25XX is a double-encoded %XX (a URL inside a URL parameter).
		if i+4 < len(line) && line[i+1] == '2' && line[i+2] == '5' && isHex(line[i+3]) && isHex(line[i+4]) {
			return 5, unhex(line[i+3])<<4 | unhex(line[i+4])
		}
		if i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
			return 3, unhex(line[i+1])<<4 | unhex(line[i+2])
		}
	case '\\':
		if i+1 < len(line) && line[i+1] == '/' {
			return 2, '/'
		}
		if i+5 < len(line) && line[i+1] == 'u' && line[i+2] == '0' && line[i+3] == '0' && isHex(line[i+4]) && isHex(line[i+5]) {
			b := unhex(line[i+4])<<4 | unhex(line[i+5])
			if b < 0x80 {
				return 6, b
			}
		}
	}
	return 0, 0
}

// unescape appends the decoding of every escape in src (see escAt) to dst.
func unescape(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		if n, b := escAt(src, i); n > 0 {
			dst = append(dst, b)
			i += n
			continue
		}
		dst = append(dst, src[i])
		i++
	}
	return dst
}

// readRun reads value bytes of class mask from i, accepting escapes that decode
// to such bytes. It stops at limit. esc reports whether any escape was seen.
func readRun(line []byte, i, limit int, mask uint8) (end int, esc bool) {
	if limit > len(line) {
		limit = len(line)
	}
	j := i
	for j < limit {
		c := line[j]
		if cls[c]&mask != 0 {
			j++
			continue
		}
		if c == '%' || c == '\\' {
			if n, b := escAt(line, j); n > 0 && cls[b]&mask != 0 && j+n <= limit {
				esc = true
				j += n
				continue
			}
		}
		break
	}
	return j, esc
}

// escapedBoundary reports whether the bytes just before p end an escape
// (%XX, \n-style JSON escape or \u00XX), which counts as a delimiter.
func escapedBoundary(line []byte, p int) bool {
	if p >= 3 && line[p-3] == '%' && isHex(line[p-2]) && isHex(line[p-1]) {
		return true
	}
	if p >= 2 && line[p-2] == '\\' {
		switch line[p-1] {
		case 'n', 'r', 't', 'b', 'f', '"', '/':
			return true
		}
	}
	if p >= 6 && line[p-6] == '\\' && line[p-5] == 'u' && isHex(line[p-4]) && isHex(line[p-3]) && isHex(line[p-2]) && isHex(line[p-1]) {
		return true
	}
	return ansiSGRBefore(line, p)
}

// ansiSGRBefore reports whether an ANSI colour sequence (ESC [ digits/; m)
// ends just before p, as in coloured console logs: "\x1b[33mBearer …".
func ansiSGRBefore(line []byte, p int) bool {
	if p < 3 || line[p-1] != 'm' {
		return false
	}
	for i := p - 2; i >= 1 && p-i <= 16; i-- {
		switch c := line[i]; {
		case c == '[':
			return line[i-1] == 0x1b
		case c != ';' && (c < '0' || c > '9'):
			return false
		}
	}
	return false
}

// scratch holds the decode buffers of one Scan call.
type scratch struct {
	tok []byte // decoded credential
	aux []byte // decoded JWT parts, Basic credentials
}

const maxKeptScratch = 1 << 20

func (s *scratch) reset() {
	if cap(s.tok) > maxKeptScratch {
		s.tok = nil
	}
	if cap(s.aux) > maxKeptScratch {
		s.aux = nil
	}
	s.tok, s.aux = s.tok[:0], s.aux[:0]
}

// scanState is the state of one Scan call.
type scanState struct {
	s       *Scanner
	line    []byte
	dst     []tokenwatch.Finding
	base    int
	lastEnd int // findings never overlap: a new one must start at or after this
	sc      *scratch
	oauth   uint8 // OAuth context of the line: 0 unknown, 1 yes, 2 no
	cmdEnd  int   // end of the last curl/wget command parsed (cmdline.go)
	wgetTo  int   // the line before this was searched back for "wget " (cmdline.go)
}

func (st *scanState) scratch() *scratch {
	if st.sc == nil {
		st.sc = st.s.scratch.Get().(*scratch)
	}
	return st.sc
}

// decoded returns the credential value of line[start:end]: the bytes themselves,
// or their unescaped form in scratch when esc.
func (st *scanState) decoded(start, end int, esc bool) []byte {
	if !esc {
		return st.line[start:end]
	}
	sc := st.scratch()
	sc.tok = unescape(sc.tok[:0], st.line[start:end])
	return sc.tok
}

func (st *scanState) run() {
	m := theMatcher
	line := st.line
	var cands [maxBlockCands]cand
	for i := 0; i < len(line); {
		n, next := m.nextBlock(line, i, &cands)
		for _, c := range cands[:n] {
			if int(c.start) >= st.lastEnd {
				st.handle(&m.anchors[c.a], int(c.start))
			}
		}
		i = next
		if st.lastEnd > i {
			i = st.lastEnd
		}
	}
}

// runRange is run over the anchors that start in [from, to) and end by to. A
// command-line validator runs it over the bytes between a command word and the
// credential it is about to emit, so findings stay in line order (cmdline.go).
// run is kept apart: it is the hot loop of every clean line.
func (st *scanState) runRange(from, to int) {
	m := theMatcher
	line := st.line[:to]
	var cands [maxBlockCands]cand
	for i := from; i < len(line); {
		n, next := m.nextBlock(line, i, &cands)
		for _, c := range cands[:n] {
			if int(c.start) >= st.lastEnd && int(c.start) >= from {
				st.handle(&m.anchors[c.a], int(c.start))
			}
		}
		i = next
		if st.lastEnd > i {
			i = st.lastEnd
		}
	}
}

// handle runs the validator of anchor a found at p. It reports whether a
// finding was emitted.
func (st *scanState) handle(a *anchor, p int) bool {
	switch a.fam {
	case famJWT:
		return st.jwtAt(p, "", paramRef{})
	case famScheme:
		return st.schemeAt(p, len(a.text), a.scheme)
	case famToken:
		if st.paramAt(p, len(a.text)) {
			return true
		}
		return st.schemeAt(p, len(a.text), "token")
	case famKey:
		return st.paramAt(p, len(a.text))
	case famCookie:
		return st.cookieAt(p, len(a.text))
	case famPrefix:
		return st.prefixAt(a, p, "", paramRef{})
	case famCmd:
		if a.tool == toolWget {
			return st.wgetAt(p)
		}
		return st.cmdAt(p, a.tool)
	case famURL:
		return st.urlAt(p)
	}
	panic("BUG: anchor without family")
}

// paramRef names the parameter or cookie that carried a credential without
// building the string until a finding is emitted (clean lines allocate nothing).
type paramRef struct {
	prefix string // "Cookie:" or ""
	name   []byte
}

func (p paramRef) String() string {
	if p.name == nil {
		return ""
	}
	return p.prefix + string(p.name)
}

// emit appends a finding unless it overlaps the previous one.
func (st *scanState) emit(start, end int, tok []byte, kind, rule, scheme string, param paramRef, jwt *tokenwatch.JWTInfo) bool {
	if start < st.lastEnd || end <= start {
		return false
	}
	st.dst = append(st.dst, tokenwatch.Finding{
		Kind:        kind,
		Rule:        rule,
		Start:       start,
		End:         end,
		Fingerprint: st.s.Fingerprint(tok),
		Redacted:    Redact(tok),
		Scheme:      scheme,
		Param:       param.String(),
		JWT:         jwt,
	})
	st.lastEnd = end
	return true
}

// ---- JWT ----------------------------------------------------------------

// jwtBoundaryOK reports whether a JWT may start at p: the byte before is not a
// base64url byte, or it ends an escape.
func jwtBoundaryOK(line []byte, p int) bool {
	if p == 0 {
		return true
	}
	c := line[p-1]
	if !isAlnum(c) && c != '-' && c != '_' {
		return true
	}
	return escapedBoundary(line, p)
}

// jwtSpan finds the extent of a compact JWS/JWE starting at p and validates it.
// It returns the span end, the decoded token and whether it is a JWE.
func (st *scanState) jwtSpan(p int) (end int, tok []byte, jwe bool, ok bool) {
	line := st.line
	limit := p + 3*st.s.maxTok // an escaped token is at most 3x its decoded length
	if limit > len(line) {
		limit = len(line)
	}
	var segEnd [6]int
	nseg := 0
	esc := false
	i := p
	for nseg < 6 {
		j := i
		for j < limit {
			c := line[j]
			if cls[c]&cB64 != 0 || c == '=' {
				j++
				continue
			}
			if c == '%' || c == '\\' {
				if n, b := escAt(line, j); n > 0 && (cls[b]&cB64 != 0 || b == '=') && j+n <= limit {
					esc = true
					j += n
					continue
				}
			}
			break
		}
		segEnd[nseg] = j
		nseg++
		if j < limit && line[j] == '.' {
			i = j + 1
			continue
		}
		if n, b := escAt(line, j); n > 0 && b == '.' && j+n <= limit {
			esc = true
			i = j + n
			continue
		}
		break
	}
	if nseg < 3 {
		return 0, nil, false, false
	}
	// Try JWE (5 parts) first when there are enough parts, then JWS (3).
	if nseg >= 5 {
		if tok, ok := st.validJWT(p, segEnd[4], esc, 5); ok {
			return segEnd[4], tok, true, true
		}
	}
	if tok, ok := st.validJWT(p, segEnd[2], esc, 3); ok {
		return segEnd[2], tok, false, true
	}
	return 0, nil, false, false
}

// validJWT checks line[p:end] as a JWT of the given number of parts.
func (st *scanState) validJWT(p, end int, esc bool, parts int) ([]byte, bool) {
	tok := st.decoded(p, end, esc)
	if len(tok) > st.s.maxTok {
		return nil, false
	}
	var seg [5][]byte
	rest := tok
	for k := 0; k < parts-1; k++ {
		d := bytes.IndexByte(rest, '.')
		if d < 0 {
			return nil, false
		}
		seg[k], rest = rest[:d], rest[d+1:]
	}
	seg[parts-1] = rest
	for k := 0; k < parts; k++ {
		if !b64Shape(seg[k]) {
			return nil, false
		}
	}
	if len(seg[0]) < 8 || len(seg[0]) > MaxJWTHeaderLen*4/3+4 || len(seg[1]) == 0 && parts == 3 {
		return nil, false
	}
	sc := st.scratch()
	hdr, ok := b64Decode(sc.aux[:0], seg[0])
	sc.aux = hdr
	if !ok {
		return nil, false
	}
	alg, enc, ok := jsonObjectStrings(hdr, "alg", "enc")
	if !ok || len(alg) == 0 {
		return nil, false
	}
	if parts == 5 {
		// JWE: encrypted key may be empty (dir); IV, ciphertext and tag may not.
		if len(enc) == 0 || len(seg[2]) == 0 || len(seg[3]) == 0 || len(seg[4]) == 0 {
			return nil, false
		}
		return tok, true
	}
	if len(seg[2]) == 0 && !asciiEqualFold(alg, "none") {
		return nil, false
	}
	// The payload must be base64 too; decoding it checks more than its shape.
	if len(seg[1]) > MaxJWTClaimsLen*4/3+4 {
		return nil, false
	}
	pay, ok := b64Decode(sc.aux[:0], seg[1])
	sc.aux = pay
	if !ok || len(pay) == 0 {
		return nil, false
	}
	return tok, true
}

// b64Shape checks a JWT part: base64 bytes, '=' only as trailing padding (at
// most 2), and a length that can be decoded.
func b64Shape(s []byte) bool {
	n := len(s)
	for pad := 0; n > 0 && s[n-1] == '=' && pad < 2; pad++ {
		n--
	}
	for _, c := range s[:n] {
		if cls[c]&cB64 == 0 {
			return false
		}
	}
	return n%4 != 1
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// jwtAt reports a JWT starting at p (anchor "eyJ" or a value that starts with it).
func (st *scanState) jwtAt(p int, scheme string, param paramRef) bool {
	if p < st.lastEnd {
		return false
	}
	if scheme == "" && param.name == nil && !jwtBoundaryOK(st.line, p) {
		return false
	}
	end, tok, jwe, ok := st.jwtSpan(p)
	if !ok {
		return false
	}
	info, err := decodeJWT(tok, st.s.now(), &st.scratch().aux)
	if err != nil {
		// validJWT and DecodeJWT disagree only on claims that are not a JSON
		// object; report the token without claims rather than lose it.
		info = nil
	}
	if jwe {
		return st.emit(p, end, tok, KindJWE, "jwt.jwe", scheme, param, info)
	}
	return st.emit(p, end, tok, KindJWT, "jwt.compact", scheme, param, info)
}
