package detect

import "bytes"

// ---- parameters, fields and headers named like credentials ----------------------

const maxKeyLen = 64

// keyKind classifies a normalised key name (lower case, without '_', '-', '.').
func keyKind(norm []byte) (kind, rule string) {
	has := func(suffix string) bool { return bytes.HasSuffix(norm, []byte(suffix)) }
	switch {
	case has("accesstoken"):
		return KindOAuthAccessToken, "oauth.access_token"
	case has("refreshtoken"):
		return KindOAuthRefreshToken, "oauth.refresh_token"
	case has("idtoken"), has("idtokenhint"):
		return KindOAuthIDToken, "oauth.id_token"
	case has("clientsecret"):
		return KindOAuthClientSecret, "oauth.client_secret"
	case has("secretaccesskey"), has("awssecretkey"):
		return KindAWSSecretKey, "aws.secret_access_key"
	case string(norm) == "code", string(norm) == "authorizationcode", string(norm) == "authcode":
		return KindOAuthCode, "oauth.code"
	case has("token"):
		for _, x := range notCredentialTokens {
			if has(x) {
				return "", ""
			}
		}
		return KindToken, "param.token"
	}
	return "", ""
}

// notCredentialTokens are *token names that are not bearer credentials.
var notCredentialTokens = []string{
	"csrftoken", "xsrftoken", "antiforgerytoken", "verificationtoken", "pagetoken",
	"nexttoken", "prevtoken", "previoustoken", "continuationtoken", "continuetoken",
	"cursortoken", "paginationtoken", "pagingtoken", "synctoken", "resumetoken",
	"canceltoken", "cancellationtoken", "devicetoken", "pushtoken", "fcmtoken",
	"apnstoken", "registrationtoken", "idempotencytoken", "clienttoken", "starttoken",
	"captchatoken", "notificationtoken", "lasttoken", "maxtoken", "counttoken",
}

// normKey lower-cases key and drops '_', '-' and '.' into buf.
func normKey(buf []byte, key []byte) []byte {
	for _, c := range key {
		if c == '_' || c == '-' || c == '.' {
			continue
		}
		buf = append(buf, lower(c))
	}
	return buf
}

// keyBounds extends the anchor at [p, p+n) to the whole key name. ok is false
// when the key is longer than maxKeyLen.
func keyBounds(line []byte, p, n int) (ks, ke int, ok bool) {
	ks = p
	for ks > 0 && cls[line[ks-1]]&cKey != 0 {
		ks--
		if p-ks > maxKeyLen {
			return 0, 0, false
		}
	}
	// Drop the tail of an escape that precedes the key: %26access_token, \naccess_token.
	if ks >= 1 && line[ks-1] == '%' && p-ks >= 4 && line[ks] == '2' && line[ks+1] == '5' && isHex(line[ks+2]) && isHex(line[ks+3]) {
		ks += 4 // %2526access_token (double encoding)
	} else if ks >= 1 && line[ks-1] == '%' && p-ks >= 2 && isHex(line[ks]) && isHex(line[ks+1]) {
		ks += 2
	} else if ks >= 1 && line[ks-1] == '\\' && p-ks >= 1 && (line[ks] == 'n' || line[ks] == 't' || line[ks] == 'r') {
		ks++
	}
	ke = p + n
	for ke < len(line) && cls[line[ke]]&cKey != 0 {
		ke++
		if ke-p > maxKeyLen {
			return 0, 0, false
		}
	}
	return ks, ke, true
}

// quote kinds around a value
const (
	qNone = iota
	qDouble
	qSingle
	qEscDouble // \"
	qURL       // %22
	qXML       // <key>value</key>
)

// valueStart parses the separator after a key ending at ke and returns where
// the value starts and how it is quoted. Accepted: key=v, key: v, "key":"v",
// "key": "v", 'key': 'v', \"key\":\"v\", key%3Dv, key%3A%20v, "key"=>"v",
// <key>v</key>.
func valueStart(line []byte, ks, ke int) (int, int, bool) {
	n := len(line)
	j := ke
	if ks > 0 && line[ks-1] == '<' && j < n && line[j] == '>' {
		return j + 1, qXML, true
	}
	switch {
	case j < n && (line[j] == '"' || line[j] == '\''):
		j++
	case j+1 < n && line[j] == '\\' && line[j+1] == '"':
		j += 2
	case j+2 < n && line[j] == '%' && line[j+1] == '2' && line[j+2] == '2':
		j += 3
	}
	for j < n && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	switch {
	case j < n && line[j] == '=':
		j++
		if j < n && line[j] == '>' {
			j++
		}
	case j < n && line[j] == ':':
		j++
	case j+2 < n && line[j] == '%' && line[j+1] == '3' && (line[j+2] == 'D' || line[j+2] == 'd' || line[j+2] == 'A' || line[j+2] == 'a'):
		j += 3
	case j+4 < n && line[j] == '%' && line[j+1] == '2' && line[j+2] == '5' && line[j+3] == '3' && (line[j+4] == 'D' || line[j+4] == 'd'):
		j += 5 // %253D
	default:
		return 0, 0, false
	}
	for j < n {
		if line[j] == ' ' || line[j] == '\t' {
			j++
		} else if j+2 < n && line[j] == '%' && line[j+1] == '2' && line[j+2] == '0' {
			j += 3
		} else {
			break
		}
	}
	q := qNone
	switch {
	case j < n && line[j] == '"':
		q, j = qDouble, j+1
	case j < n && line[j] == '\'':
		q, j = qSingle, j+1
	case j+1 < n && line[j] == '\\' && line[j+1] == '"':
		q, j = qEscDouble, j+2
	case j+2 < n && line[j] == '%' && line[j+1] == '2' && line[j+2] == '2':
		q, j = qURL, j+3
	}
	return j, q, j < n
}

// closes reports whether the value ending at end is properly closed for q.
func closes(line []byte, end, q int) bool {
	n := len(line)
	switch q {
	case qDouble:
		return end < n && line[end] == '"'
	case qSingle:
		return end < n && line[end] == '\''
	case qEscDouble:
		return end+1 < n && line[end] == '\\' && line[end+1] == '"'
	case qURL:
		return end+2 < n && line[end] == '%' && line[end+1] == '2' && line[end+2] == '2'
	case qXML:
		return end < n && line[end] == '<'
	}
	return true
}

// paramAt handles an anchor inside a key name: access_token=…, "refresh_token":
// "…", X-Auth-Token: …, client_secret=…, code=… (OAuth context only).
func (st *scanState) paramAt(p, n int) bool {
	line := st.line
	ks, ke, ok := keyBounds(line, p, n)
	if !ok || ke-ks > maxKeyLen {
		return false
	}
	if ks >= 10 && string(line[ks-10:ks]) == "[REDACTED:" {
		return false // tokenwatch's own marker: [REDACTED:oauth_access_token:1a2b3c4d]
	}
	var nb [maxKeyLen]byte
	norm := normKey(nb[:0], line[ks:ke])
	kind, rule := keyKind(norm)
	if kind == "" {
		return false
	}
	j, q, ok := valueStart(line, ks, ke)
	if !ok {
		return false
	}
	if kind == KindOAuthCode && !st.oauthContext() {
		return false
	}
	if isSchemeWord(line, j) {
		return false // "authorization_token": "Bearer …": the scheme anchor reports it
	}
	param := paramRef{name: line[ks:ke]}
	if hasJWTStart(line, j) {
		return st.jwtAt(j, "", param)
	}
	end, esc := readRun(line, j, j+3*st.s.maxTok, cTok)
	if q == qNone {
		for end > j && line[end-1] == '.' {
			end--
		}
	}
	if end == j || !closes(line, end, q) || (q == qNone && followsWord(line, end)) {
		return false
	}
	if st.prefixedValue(j, end, "", param) {
		return true
	}
	tok := st.decoded(j, end, esc)
	if len(tok) > st.s.maxTok {
		return false
	}
	switch kind {
	case KindAWSSecretKey:
		if !awsSecretShape(tok) {
			return false
		}
	case KindOAuthCode:
		if !plausible(tok, 8) {
			return false
		}
	default:
		if !plausible(tok, 12) {
			return false
		}
	}
	return st.emit(j, end, tok, kind, rule, "", param, nil)
}

func isSchemeWord(line []byte, j int) bool {
	for _, w := range [...]string{"bearer", "basic", "dpop", "token"} {
		if len(line)-j > len(w) && asciiEqualFold(line[j:j+len(w)], w) && !isAlnum(line[j+len(w)]) {
			return true
		}
	}
	return false
}

// oauthMarkers tell that a code= parameter is an OAuth authorization code.
var oauthMarkers = [...]string{"state=", "redirect_uri", "authorization_code", "/callback", "/authorize", "oauth", "OAuth", "code_verifier", "session_state", "/cb?", "\"state\""}

// oauthContext reports whether the line carries OAuth context. It is computed
// once per line: a line with many code= keys costs one search, not one each.
func (st *scanState) oauthContext() bool {
	if st.oauth == 0 {
		st.oauth = 2
		for _, m := range oauthMarkers {
			if bytes.Contains(st.line, []byte(m)) {
				st.oauth = 1
				break
			}
		}
	}
	return st.oauth == 1
}

// awsSecretShape: 40 bytes of [A-Za-z0-9/+] with upper and lower case, not
// AWS's documentation example (wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY).
func awsSecretShape(tok []byte) bool {
	if len(tok) != 40 || bytes.Contains(tok, []byte("EXAMPLE")) {
		return false
	}
	var have uint8
	for _, c := range tok {
		if !isAlnum(c) && c != '/' && c != '+' {
			return false
		}
		have |= cls[c] & (cUpper | cLower | cDigit)
	}
	return have&cUpper != 0 && have&cLower != 0
}

// ---- cookies ----------------------------------------------------------------

var cookieNameMarkers = [...]string{"sess", "sid", "token", "auth", "jwt", "access", "refresh", "remember", "login", "identity", "credential", "saml", "oidc", "sso"}

func sessionCookieName(name []byte) bool {
	if containsFold(name, "csrf") || containsFold(name, "xsrf") || containsFold(name, "antiforgery") {
		return false
	}
	for _, m := range cookieNameMarkers {
		if containsFold(name, m) {
			return true
		}
	}
	return false
}

// cookieAt handles Cookie: a=b; c=d and Set-Cookie: a=b; Path=/ headers (also
// as JSON fields). Every cookie whose name says session/auth is reported, and
// every cookie value that is a JWT or a prefixed token.
func (st *scanState) cookieAt(p, n int) bool {
	line := st.line
	if !wordStartOK(line, p) {
		return false
	}
	set := p >= 4 && asciiEqualFold(line[p-4:p], "set-")
	j := p + n
	if j < len(line) && (line[j] == 's' || line[j] == 'S') {
		j++ // "Cookies:"
	}
	// The header's own quoting ("Cookie": "a=b; c=d") needs no closing check:
	// every pair is validated on its own.
	j, _, ok := valueStart(line, p, j)
	if !ok {
		return false
	}
	found := false
	for pairs := 0; pairs < 64 && j < len(line); pairs++ {
		for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
			j++
		}
		ns := j
		for j < len(line) && j-ns < 128 && cookieNameByte(line[j]) {
			j++
		}
		if j == ns || j >= len(line) || line[j] != '=' {
			break
		}
		name := line[ns:j]
		j++
		vq := qNone
		if j < len(line) && line[j] == '"' {
			vq, j = qDouble, j+1
		}
		vs := j
		end, esc := readRun(line, vs, vs+3*st.s.maxTok, cCookie)
		if closes(line, end, vq) && end > vs {
			if hasJWTStart(line, vs) {
				found = st.jwtAt(vs, "", paramRef{"Cookie:", name}) || found
			} else if st.prefixedValue(vs, end, "", paramRef{"Cookie:", name}) {
				found = true
			} else if sessionCookieName(name) {
				tok := st.decoded(vs, end, esc)
				if len(tok) <= st.s.maxTok && plausible(tok, 16) {
					found = st.emit(vs, end, tok, KindSessionCookie, "cookie.session", "", paramRef{"Cookie:", name}, nil) || found
				}
			}
		}
		j = end
		if vq == qDouble && j < len(line) && line[j] == '"' {
			j++
		}
		if set || j >= len(line) || line[j] != ';' {
			break
		}
		j++
	}
	return found
}

func cookieNameByte(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '=', ';', ',', '"', '\'', '\\', '(', ')', '<', '>', '@', '[', ']', '{', '}', '/', '?', ':':
		return false
	}
	return true
}
