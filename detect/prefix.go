package detect

import (
	"bytes"
	"hash/crc32"
)

// ---- well-known prefixed tokens ---------------------------------------------

// prefixRule validates the body of a prefixed token (the bytes after the
// prefix); check returns the body length, or 0 when the body is not valid.
type prefixRule struct {
	kind, rule string
	check      func(b []byte) int
}

func runOf(b []byte, max int, ok func(c byte) bool) int {
	n := 0
	for n < len(b) && n <= max && ok(b[n]) {
		n++
	}
	return n
}

func isB62(c byte) bool      { return isAlnum(c) }
func isB64URL(c byte) bool   { return isAlnum(c) || c == '-' || c == '_' }
func isLowerHex(c byte) bool { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') }

// exact returns n when b starts with exactly n bytes satisfying ok (the next
// byte, if any, does not).
func exact(b []byte, n int, ok func(c byte) bool) int {
	if runOf(b, n, ok) != n {
		return 0
	}
	return n
}

// between returns the run length of ok bytes when it is in [lo, hi].
func between(b []byte, lo, hi int, ok func(c byte) bool) int {
	n := runOf(b, hi, ok)
	if n < lo || n > hi {
		return 0
	}
	return n
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// checksum62 is the checksum of GitHub's token format (and npm's): the CRC32
// (IEEE) of the 30-byte random part, in base62, left-padded with '0' to 6 bytes.
func checksum62(body []byte) [6]byte {
	v := crc32.ChecksumIEEE(body)
	var out [6]byte
	for i := 5; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return out
}

// crcBody checks a 36-byte base62 body whose last 6 bytes are checksum62 of
// the first 30 (ghp_, gho_, ghu_, ghs_, ghr_, npm_).
func crcBody(b []byte) int {
	if exact(b, 36, isB62) == 0 {
		return 0
	}
	if checksum62(b[:30]) != [6]byte(b[30:36]) {
		return 0
	}
	return 36
}

var (
	ruleGHP     = &prefixRule{KindGitHubPAT, "github.classic_pat", crcBody}
	ruleGHO     = &prefixRule{KindGitHubOAuth, "github.oauth", crcBody}
	ruleGHU     = &prefixRule{KindGitHubUserToServer, "github.user_to_server", crcBody}
	ruleGHS     = &prefixRule{KindGitHubServer, "github.server_to_server", crcBody}
	ruleGHR     = &prefixRule{KindGitHubRefresh, "github.refresh_token", crcBody}
	ruleGHFine  = &prefixRule{KindGitHubFineGrained, "github.fine_grained_pat", checkGHFine}
	ruleGitLab  = &prefixRule{KindGitLabPAT, "gitlab.pat", checkGitLab}
	ruleSlack   = &prefixRule{KindSlackToken, "slack.token", checkSlack}
	ruleYa29    = &prefixRule{KindGoogleOAuth, "google.oauth_access_token", func(b []byte) int { return between(b, 20, 2048, isB64URL) }}
	ruleAIza    = &prefixRule{KindGoogleAPIKey, "google.api_key", func(b []byte) int { return exact(b, 35, isB64URL) }}
	ruleStripe  = &prefixRule{KindStripeSecret, "stripe.secret_key", func(b []byte) int { return between(b, 24, 247, isB62) }}
	ruleStripeR = &prefixRule{KindStripeRestricted, "stripe.restricted_key", func(b []byte) int { return between(b, 24, 247, isB62) }}
	ruleNPM     = &prefixRule{KindNPMToken, "npm.access_token", crcBody}
	ruleAWS     = &prefixRule{KindAWSAccessKeyID, "aws.access_key_id", checkAWSID}
	ruleSG      = &prefixRule{KindSendGrid, "sendgrid.api_key", checkSendGrid}
	ruleOpenAI  = &prefixRule{KindOpenAI, "openai.api_key", func(b []byte) int { return between(b, 40, 400, isB64URL) }}
	ruleAnthro  = &prefixRule{KindAnthropic, "anthropic.api_key", checkAnthropic}
	ruleHF      = &prefixRule{KindHuggingFace, "huggingface.token", func(b []byte) int {
		return exact(b, 34, func(c byte) bool { return cls[c]&(cUpper|cLower) != 0 })
	}}
	ruleShopify = &prefixRule{KindShopify, "shopify.token", func(b []byte) int {
		return exact(b, 32, func(c byte) bool { return isHex(c) })
	}}
	ruleDO   = &prefixRule{KindDigitalOcean, "digitalocean.token", func(b []byte) int { return exact(b, 64, isLowerHex) }}
	rulePyPI = &prefixRule{KindPyPI, "pypi.token", func(b []byte) int { return between(b, 50, 4096, isB64URL) }}
	// ruleOpenAILegacy is anchored on "T3BlbkFJ" (base64 of "OpenAI") in the
	// middle of sk-<20>T3BlbkFJ<20>; prefixAt handles it specially.
	ruleOpenAILegacy = &prefixRule{KindOpenAI, "openai.api_key", func(b []byte) int { return exact(b, 20, isB62) }}
)

func checkGHFine(b []byte) int {
	if runOf(b, 22, isB62) != 22 || len(b) < 23 || b[22] != '_' {
		return 0
	}
	if exact(b[23:], 59, isB62) == 0 {
		return 0
	}
	return 82
}

func checkGitLab(b []byte) int {
	n := runOf(b, 300, func(c byte) bool { return isB64URL(c) || c == '.' })
	for n > 0 && b[n-1] == '.' {
		n--
	}
	if n < 20 || n > 300 {
		return 0
	}
	return n
}

func checkSlack(b []byte) int {
	n := runOf(b, 250, func(c byte) bool { return isAlnum(c) || c == '-' })
	for n > 0 && b[n-1] == '-' {
		n--
	}
	if n < 10 || n > 250 {
		return 0
	}
	digits := 0
	for _, c := range b[:n] {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	if digits < 4 {
		return 0
	}
	return n
}

// checkAWSID: 16 base32 bytes, not AWS's documentation example (…EXAMPLE).
func checkAWSID(b []byte) int {
	n := exact(b, 16, func(c byte) bool { return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7') })
	if n == 0 || bytes.Contains(b[:n], []byte("EXAMPLE")) {
		return 0
	}
	return n
}

func checkSendGrid(b []byte) int {
	if runOf(b, 22, isB64URL) != 22 || len(b) < 23 || b[22] != '.' {
		return 0
	}
	if exact(b[23:], 43, isB64URL) == 0 {
		return 0
	}
	return 66
}

// checkAnthropic: api03- / admin01- (letters, two digits, '-') then 80+ bytes.
func checkAnthropic(b []byte) int {
	i := runOf(b, 16, func(c byte) bool { return c >= 'a' && c <= 'z' })
	if i == 0 || len(b) < i+3 || !isDigit(b[i]) || !isDigit(b[i+1]) || b[i+2] != '-' {
		return 0
	}
	n := between(b[i+3:], 80, 400, isB64URL)
	if n == 0 {
		return 0
	}
	return i + 3 + n
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// prefixBoundaryOK: a prefixed token starts a word (or follows an escape).
func prefixBoundaryOK(line []byte, p int) bool {
	if p == 0 {
		return true
	}
	c := line[p-1]
	return !(isAlnum(c) || c == '_' || c == '-') || escapedBoundary(line, p)
}

// prefixAt reports the prefixed token whose anchor a is at p.
func (st *scanState) prefixAt(a *anchor, p int, scheme string, param paramRef) bool {
	line := st.line
	r := a.pfx
	if r == ruleOpenAILegacy {
		// sk- + 20 base62 + T3BlbkFJ + 20 base62
		s := p - 23
		if s < 0 || string(line[s:s+3]) != "sk-" || runOf(line[s+3:p], 20, isB62) != 20 || !prefixBoundaryOK(line, s) {
			return false
		}
		n := r.check(line[p+len(a.text):])
		if n == 0 {
			return false
		}
		end := p + len(a.text) + n
		return st.emit(s, end, line[s:end], r.kind, r.rule, scheme, param, nil)
	}
	if !prefixBoundaryOK(line, p) {
		return false
	}
	n := r.check(line[p+len(a.text):])
	if n == 0 {
		return false
	}
	end := p + len(a.text) + n
	if end < len(line) && (isAlnum(line[end]) || line[end] == '_') || end-p > st.s.maxTok {
		return false
	}
	if !st.emit(p, end, line[p:end], r.kind, r.rule, scheme, param, nil) {
		return false
	}
	if r == ruleAWS {
		st.awsSecretAfter(end)
	}
	return true
}

// awsSecretAfter reports a 40-byte secret access key right after an access key
// id (CSV exports, `aws configure list`, key=id secret=… pairs).
func (st *scanState) awsSecretAfter(i int) {
	line := st.line
	j := i
	for j < len(line) && j-i < 32 {
		c := line[j]
		if c == ' ' || c == '\t' || c == ',' || c == ';' || c == ':' || c == '|' || c == '=' || c == '"' || c == '\'' {
			j++
			continue
		}
		if isAlnum(c) || c == '/' || c == '+' {
			break
		}
		return
	}
	// Skip a key name like aws_secret_access_key= between the two.
	ks := j
	for j < len(line) && j-ks < 40 && (isAlnum(line[j]) || line[j] == '_') {
		j++
	}
	if j < len(line) && (line[j] == '=' || line[j] == ':' || line[j] == '"') && j-ks < 40 {
		j, _, _ = valueStart(line, ks, j)
	} else {
		j = ks
	}
	end := j
	for end < len(line) && end-j <= 40 && (isAlnum(line[end]) || line[end] == '/' || line[end] == '+') {
		end++
	}
	if end-j != 40 || (end < len(line) && (isAlnum(line[end]) || line[end] == '/' || line[end] == '+' || line[end] == '=')) {
		return
	}
	if awsSecretShape(line[j:end]) {
		st.emit(j, end, line[j:end], KindAWSSecretKey, "aws.secret_access_key", "", paramRef{}, nil)
	}
}

// prefixedValue handles line[j:end] when it starts with a token prefix (a value
// found after a scheme or a key): it reports the token, keeping the scheme/param
// context, when it validates. It returns true whenever a prefix matched, so a
// ghp_ value with a wrong checksum is not reported as an opaque token either.
func (st *scanState) prefixedValue(j, end int, scheme string, param paramRef) bool {
	line := st.line[:end]
	for i := range theMatcher.anchors {
		a := &theMatcher.anchors[i]
		if a.fam != famPrefix || a.pfx == ruleOpenAILegacy || !a.at(line, j) {
			continue
		}
		st.prefixAt(a, j, scheme, param)
		return true
	}
	return false
}

// ---- the anchor set -----------------------------------------------------------

var theMatcher = newMatcher(anchorSet())

func anchorSet() []anchor {
	// win: offset of the 3-byte window the prefilter keys on, chosen rare in
	// logs (bigram rates measured on the benchmark corpus).
	as := []anchor{
		{text: "eyJ", fam: famJWT},          // base64 of `{"`: every compact JWT header
		{text: "eyAi", win: 1, fam: famJWT}, // `{ "`: headers serialised with a space
		{text: "ewog", win: 1, fam: famJWT}, // `{\n `: pretty-printed headers
		{text: "bearer", ci: true, fam: famScheme, scheme: "Bearer"},
		{text: "basic", ci: true, win: 1, fam: famScheme, scheme: "Basic"},
		{text: "dpop", ci: true, fam: famScheme, scheme: "DPoP"},
		{text: "token", ci: true, win: 1, fam: famToken},
		{text: "secret", ci: true, win: 1, fam: famKey},
		{text: "code", ci: true, fam: famKey},
		{text: "cookie", ci: true, win: 3, fam: famCookie},
		// Command lines. curl: the command word and a space ("rl " is rare in
		// logs; "cur"/"url" are not, and "curl/" of user agents stops there).
		// wget: its password options (--password, --http-password, …), whose
		// "swo" costs one new bigram ("sw"; "wo" is ewog's), where "wget "
		// would add "ge" (GET, message, page): 2.4x the lane hits of "rl ".
		{text: "curl ", win: 2, fam: famCmd, tool: toolCurl},
		{text: "-password", win: 4, fam: famCmd, tool: toolWget},
		// URL userinfo: "://" is in every URL; its validator stops at the end
		// of the authority when it holds no '@' (urlcred.go).
		{text: "://", fam: famURL},
	}
	pfx := []struct {
		text string
		win  int
		r    *prefixRule
	}{
		{"ghp_", 1, ruleGHP}, {"gho_", 1, ruleGHO}, {"ghu_", 1, ruleGHU}, {"ghs_", 1, ruleGHS}, {"ghr_", 1, ruleGHR},
		{"github_pat_", 5, ruleGHFine}, {"glpat-", 0, ruleGitLab},
		{"xoxb-", 0, ruleSlack}, {"xoxp-", 0, ruleSlack}, {"xoxa-", 0, ruleSlack}, {"xoxo-", 0, ruleSlack}, {"xoxs-", 0, ruleSlack}, {"xoxr-", 0, ruleSlack},
		{"ya29.", 0, ruleYa29}, {"AIza", 1, ruleAIza},
		{"sk_live_", 0, ruleStripe}, {"sk_test_", 0, ruleStripe}, {"rk_live_", 1, ruleStripeR}, {"rk_test_", 1, ruleStripeR},
		{"npm_", 0, ruleNPM}, {"AKIA", 0, ruleAWS}, {"ASIA", 1, ruleAWS}, {"SG.", 0, ruleSG},
		{"sk-proj-", 0, ruleOpenAI}, {"sk-svcacct-", 0, ruleOpenAI}, {"sk-admin-", 0, ruleOpenAI}, {"T3BlbkFJ", 5, ruleOpenAILegacy},
		{"sk-ant-", 0, ruleAnthro}, {"hf_", 0, ruleHF},
		{"shpat_", 1, ruleShopify}, {"shpca_", 1, ruleShopify}, {"shppa_", 1, ruleShopify}, {"shpss_", 1, ruleShopify},
		{"dop_v1_", 2, ruleDO}, {"doo_v1_", 2, ruleDO}, {"dor_v1_", 2, ruleDO},
		{"pypi-AgEIcHlwaS5vcmc", 1, rulePyPI},
	}
	for _, p := range pfx {
		as = append(as, anchor{text: p.text, win: p.win, fam: famPrefix, pfx: p.r})
	}
	return as
}
