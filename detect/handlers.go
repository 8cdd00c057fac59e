package detect

import (
	"bytes"

	"github.com/cloudflare/ahocorasick"
)

// ---- Authorization schemes ---------------------------------------------------

// wordStartOK reports whether a word may start at p: the byte before is not a
// letter or digit, or it ends an escape (%20Bearer, \nBearer).
func wordStartOK(line []byte, p int) bool {
	return p == 0 || !isAlnum(line[p-1]) || escapedBoundary(line, p)
}

// skipSchemeSpace skips the separator between a scheme and its token: spaces,
// tabs, '+' (form encoding) and %20. It returns i unchanged when there is none.
func skipSchemeSpace(line []byte, i int) int {
	for i < len(line) {
		switch line[i] {
		case ' ', '\t', '+':
			i++
			continue
		case '%':
			if i+2 < len(line) && line[i+1] == '2' && line[i+2] == '0' {
				i += 3
				continue
			}
			if i+4 < len(line) && line[i+1] == '2' && line[i+2] == '5' && line[i+3] == '2' && line[i+4] == '0' {
				i += 5 // %2520
				continue
			}
		}
		break
	}
	return i
}

// authorizationBefore reports whether the text before p is an Authorization
// header or field name followed by its separator: `Authorization: `,
// `"authorization":"`, `authorization=`.
func authorizationBefore(line []byte, p int) bool {
	i := p
	for i > 0 && (line[i-1] == ' ' || line[i-1] == '\t' || line[i-1] == '"' || line[i-1] == '\'' || line[i-1] == '\\') {
		i--
	}
	if i == 0 || (line[i-1] != ':' && line[i-1] != '=') {
		return false
	}
	i--
	for i > 0 && (line[i-1] == '"' || line[i-1] == '\'' || line[i-1] == '\\' || line[i-1] == ' ') {
		i--
	}
	const name = "authorization"
	if i < len(name) {
		return false
	}
	return asciiEqualFold(line[i-len(name):i], name)
}

// schemeAt handles "Bearer <token>", "DPoP <token>", "Basic <b64>" and, after an
// Authorization header name, "token <token>".
func (st *scanState) schemeAt(p, n int, scheme string) bool {
	line := st.line
	if !wordStartOK(line, p) {
		return false
	}
	i := p + n
	j := skipSchemeSpace(line, i)
	if j == i || j >= len(line) {
		return false
	}
	if scheme == "token" && !authorizationBefore(line, p) {
		return false
	}
	rule := "authorization.bearer"
	switch scheme {
	case "DPoP":
		rule = "authorization.dpop"
	case "token":
		rule = "authorization.token"
	case "Basic":
		return st.basicAt(j)
	}
	if hasJWTStart(line, j) {
		return st.jwtAt(j, scheme, paramRef{})
	}
	end, esc := readRun(line, j, j+3*st.s.maxTok, cTok)
	for end > j && line[end-1] == '.' {
		end--
	}
	if end == j || followsWord(line, end) {
		return false
	}
	if st.prefixedValue(j, end, scheme, paramRef{}) {
		return true
	}
	tok := st.decoded(j, end, esc)
	if len(tok) > st.s.maxTok || !plausible(tok, 12) {
		return false
	}
	return st.emit(j, end, tok, KindBearer, rule, scheme, paramRef{}, nil)
}

// followsWord reports whether the run ending at end continues as a word in a
// way no token does (a placeholder like <token> or ${TOKEN} stops earlier).
func followsWord(line []byte, end int) bool {
	if end >= len(line) {
		return false
	}
	switch c := line[end]; {
	case c == '*' || c == '<' || c == '>' || c == '{' || c == '}' || c == '$' || c == '@' || c == '!' || c == '?' || c == '#':
		return true
	case c >= 0x80: // e.g. the "…" of a redacted preview
		return true
	}
	return false
}

// hasJWTStart reports whether a JWT header may start at line[j:] (the JWT
// anchors: eyJ, eyAi, ewog).
func hasJWTStart(line []byte, j int) bool {
	if len(line)-j < 3 || line[j] != 'e' {
		return false
	}
	switch {
	case line[j+1] == 'y' && line[j+2] == 'J':
		return true
	case len(line)-j >= 4 && line[j+1] == 'y' && line[j+2] == 'A' && line[j+3] == 'i':
		return true
	case len(line)-j >= 4 && line[j+1] == 'w' && line[j+2] == 'o' && line[j+3] == 'g':
		return true
	}
	return false
}

// basicAt validates Basic credentials at j: standard base64 (padded) of
// user:password, printable, with a non-empty password.
func (st *scanState) basicAt(j int) bool {
	line := st.line
	end, esc := readRun(line, j, j+3*st.s.maxTok, cB64|cTok)
	tok := st.decoded(j, end, esc)
	// Trailing '.' is punctuation; '=' is padding.
	for len(tok) > 0 && tok[len(tok)-1] == '.' {
		tok = tok[:len(tok)-1]
		end--
	}
	if len(tok) < 8 || len(tok) > st.s.maxTok || followsWord(line, end) {
		return false
	}
	sc := st.scratch()
	dec, ok := basicDecode(sc.aux[:0], tok)
	sc.aux = dec
	if !ok {
		return false
	}
	colon := bytes.IndexByte(dec, ':')
	if colon < 1 || colon == len(dec)-1 {
		return false
	}
	for _, c := range dec {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	if isMaskedPassword(dec[colon+1:]) {
		return false
	}
	return st.emit(j, end, tok, KindBasic, "authorization.basic", "Basic", paramRef{}, nil)
}

// basicDecode decodes standard base64, padded or not (the URL alphabet is not
// Basic's).
func basicDecode(dst, tok []byte) ([]byte, bool) {
	for _, c := range tok {
		if c == '-' || c == '_' || c == '.' || c == '~' {
			return dst, false
		}
	}
	return b64Decode(dst, tok)
}

// ---- placeholders and plausibility -----------------------------------------------

// placeholders are values that stand for a token in docs and masked logs. A
// candidate equal to one of them (any case) is a placeholder; so is one that
// contains a placeholder word of six letters or more (maskWords), except the
// words real tokens and parameter names carry ("secret", "token", "bearer").
var placeholders = []string{
	"redacted", "filtered", "masked", "hidden", "removed", "omitted", "sanitized",
	"null", "nil", "none", "undefined", "empty", "invalid", "example", "sample",
	"placeholder", "changeme", "your_token", "your-token", "yourtoken", "token",
	"access_token", "bearer", "secret", "password",
}

// maskWords finds the placeholder words inside a lower-cased candidate value
// with one cloudflare/ahocorasick pass. Matcher.Contains only reads the trie,
// so it is safe for concurrent use and allocates nothing. (The line-level
// prefilter is hand-written instead; see prefilter.go for the measurements.)
var maskWords = func() *ahocorasick.Matcher {
	var words []string
	for _, p := range placeholders {
		if len(p) >= 6 && p != "secret" && p != "token" && p != "bearer" {
			words = append(words, p)
		}
	}
	return ahocorasick.NewStringMatcher(words)
}()

// maxMaskWord is the longest word of maskWords, for the window overlap.
const maxMaskWord = len("placeholder")

// isMasked reports the strong signs of a masked or templated value: it starts
// with < $ { [ * % ( #, holds "***" or "...", or is mostly x/X/* (xxxx,
// XXXX-XXXX). A random token that merely contains "xxx" is not masked.
func isMasked(tok []byte) bool {
	if len(tok) == 0 {
		return true
	}
	switch tok[0] {
	case '<', '$', '{', '[', '*', '%', '(', '#':
		return true
	}
	return maskedBody(tok)
}

// maskedBody: "***", "...", or x/X/* making up half the value or more.
func maskedBody(tok []byte) bool {
	if bytes.Contains(tok, []byte("***")) || bytes.Contains(tok, []byte("...")) {
		return true
	}
	x := 0
	for _, c := range tok {
		if c == 'x' || c == 'X' || c == '*' {
			x++
		}
	}
	return x >= 3 && 2*x >= len(tok)
}

// isMaskedPassword: a Basic password may start with any byte; only templates
// and masks count.
func isMaskedPassword(p []byte) bool {
	if len(p) == 0 || maskedBody(p) {
		return true
	}
	return (p[0] == '<' && p[len(p)-1] == '>') || bytes.HasPrefix(p, []byte("${")) || bytes.HasPrefix(p, []byte("{{"))
}

func isPlaceholder(tok []byte) bool {
	if isMasked(tok) {
		return true
	}
	for _, p := range placeholders {
		if len(tok) == len(p) && asciiEqualFold(tok, p) {
			return true
		}
	}
	return containsMaskWord(tok)
}

// containsMaskWord lower-cases tok into a stack buffer, window by window (the
// windows overlap by a word's length, so no word is split), and asks maskWords.
func containsMaskWord(tok []byte) bool {
	var buf [256]byte
	for start := 0; start < len(tok); start += len(buf) - maxMaskWord {
		end := min(start+len(buf), len(tok))
		w := buf[:end-start]
		for i, c := range tok[start:end] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			w[i] = c
		}
		if maskWords.Contains(w) {
			return true
		}
		if end == len(tok) {
			break
		}
	}
	return false
}

func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if asciiEqualFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}

// plausible reports whether an opaque value looks like a credential rather than a
// word, a number or a placeholder: at least minLen bytes, at least two of
// lower/upper/digit (or 32+ bytes), not one repeated byte, not a placeholder.
func plausible(tok []byte, minLen int) bool {
	if len(tok) < minLen || isPlaceholder(tok) {
		return false
	}
	var have uint8
	same := true
	for _, c := range tok {
		have |= cls[c] & (cUpper | cLower | cDigit)
		if c != tok[0] {
			same = false
		}
	}
	if same {
		return false
	}
	classes := 0
	for _, b := range []uint8{cUpper, cLower, cDigit} {
		if have&b != 0 {
			classes++
		}
	}
	return classes >= 2 || len(tok) >= 32
}
