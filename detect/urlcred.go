package detect

import (
	"bytes"
	"encoding/base64"
)

// ---- passwords in URLs (RFC 3986 userinfo) -----------------------------------
//
// scheme://user:password@host…: database DSNs (postgres://, mongodb+srv://,
// redis://:password@), broker URLs (amqp://), git remotes with a token
// (https://user:token@github.com/…), ftp://, smtp://.
//
// The anchor is "://". It is in every URL, so the prefilter itself rejects it
// (urlLane in prefilter.go) unless the authority after it, up to the first
// '/', '?', '#', blank, quote or backslash, holds an '@': a walk over a host
// name costs less than a candidate. Only then does urlAt take the last '@' of
// the authority and check the scheme, the user:password split and the password. An '@' after the
// first '/' is in the path, not userinfo (http://host:8080/a@b).

// urlAuthStop marks the bytes that end a URL authority as found in logs.
var urlAuthStop = func() (t [256]bool) {
	for c := 0; c <= ' '; c++ {
		t[c] = true
	}
	for c := 0x7f; c < 256; c++ {
		t[c] = true
	}
	for _, c := range []byte("/?#\"'\\<>`{}|^") {
		t[c] = true
	}
	return t
}()

// urlPasswordWords are passwords of documentation, examples and defaults
// printed in logs (the command-line words and placeholders apply too).
var urlPasswordWords = [...]string{"password", "changeme", "secret", "redacted", "pass123", "guest"}

// urlAt handles a "://" anchor at p.
func (st *scanState) urlAt(p int) bool {
	line := st.line
	as := p + 3
	limit := min(len(line), as+3*st.s.maxTok)
	at := -1
	for i := as; i < limit && !urlAuthStop[line[i]]; i++ {
		if line[i] == '@' {
			at = i
		}
	}
	if at < 0 {
		return false
	}
	if at+1 >= len(line) || urlAuthStop[line[at+1]] || line[at+1] == ':' || line[at+1] == '@' {
		return false // no host
	}
	// The scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), before "://".
	ss := p
	for ss > 0 && p-ss < 32 {
		c := line[ss-1]
		if !isAlnum(c) && c != '+' && c != '-' && c != '.' {
			break
		}
		ss--
	}
	for ss < p && cls[line[ss]]&(cUpper|cLower) == 0 {
		ss++
	}
	if p-ss < 2 {
		return false // no scheme, or a drive letter (C://)
	}
	colon := -1
	for k := as; k < at; k++ {
		if line[k] == ':' {
			colon = k
			break
		}
	}
	if colon < 0 {
		return false // user only (ssh://git@host, https://user@host)
	}
	ps := colon + 1
	pw := line[ps:at]
	if len(pw) == 0 || len(pw) > st.s.maxTok || pw[0] == '[' || bytes.Contains(line[as:at], redactedMarker) {
		return false
	}
	param := paramRef{name: line[ss:p]}
	if hasJWTStart(line[:at], ps) && st.jwtAt(ps, "", param) {
		return true
	}
	if st.prefixedValue(ps, at, "", param) {
		return true
	}
	sc := st.scratch()
	sc.tok = urlUnescape(sc.tok[:0], pw)
	dpw := sc.tok
	if urlPlaceholder(dpw) {
		return false
	}
	// The token is base64(user:password), decoded: the Basic credential an
	// HTTP client sends for this URL, so curl -u, an Authorization: Basic
	// header and the URL of the same credential share one fingerprint.
	n := len(dpw)
	sc.tok = append(urlUnescape(sc.tok, line[as:colon]), ':')
	sc.tok = append(sc.tok, sc.tok[:n]...)
	sc.aux = base64.StdEncoding.AppendEncode(sc.aux[:0], sc.tok[n:])
	return st.emit(ps, at, sc.aux, KindURLPassword, "url.userinfo", "", param, nil)
}

// urlPlaceholder reports whether a decoded URL password is a placeholder, a
// mask, a port number or too short to be a password.
func urlPlaceholder(pw []byte) bool {
	if cliPlaceholder(pw) {
		return true
	}
	if pw[0] == '$' || pw[0] == '%' || allDigits(pw) && len(pw) <= 5 {
		return true // $VAR, %VAR%, a port (http://host:8080@…)
	}
	for _, w := range urlPasswordWords {
		if asciiEqualFold(pw, w) {
			return true
		}
	}
	return false
}

// urlUnescape appends src to dst with its %XX escapes decoded.
func urlUnescape(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		if src[i] == '%' && i+2 < len(src) && isHex(src[i+1]) && isHex(src[i+2]) {
			dst = append(dst, unhex(src[i+1])<<4|unhex(src[i+2]))
			i += 2
			continue
		}
		dst = append(dst, src[i])
	}
	return dst
}
