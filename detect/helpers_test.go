package detect

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

var testKey = []byte("test-fingerprint-key-0123456789")

// testNow is the clock of every test scanner: 2026-01-01T00:00:00Z.
var testNow = time.Unix(1767225600, 0).UTC()

func newTestScanner(t testing.TB) *Scanner {
	t.Helper()
	s, err := New(WithKey(testKey), WithNow(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64u(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// mkJWT builds a compact JWS from header and claims JSON and a signature.
func mkJWT(header, claims, sig string) string {
	return b64u(header) + "." + b64u(claims) + "." + sig
}

// Fixed test tokens.
var (
	sig43   = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	jwtHS   = mkJWT(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"1234567890","name":"John Doe","iat":1516239022}`, sig43)
	jwtRS   = mkJWT(`{"alg":"RS256","kid":"k1","typ":"at+jwt"}`, `{"iss":"https://idp.example.com","sub":"alice","aud":["api","web"],"exp":1767229200,"iat":1767225600,"jti":"j-1","client_id":"web","scope":"read write"}`, sig43+sig43)
	jwtNone = mkJWT(`{"alg":"none"}`, `{"sub":"mallory","exp":1000}`, "")
	jwe5    = b64u(`{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"e1"}`) + "." + b64u(strings.Repeat("k3y!", 64)) + "." + b64u("iv-0123456ab") + "." + b64u(strings.Repeat("ciphertext..", 8)) + "." + b64u("tag-0123456789ab")
)

// ghToken returns a GitHub-format token (prefix + 30 base62 + checksum).
func ghToken(prefix, body30 string) string {
	if len(body30) != 30 {
		panic("body must be 30 bytes")
	}
	c := checksum62([]byte(body30))
	return prefix + body30 + string(c[:])
}

// marked splits a test line written with «…» around the expected credential
// into the line and the expected span.
func marked(t testing.TB, s string) (line string, start, end int) {
	t.Helper()
	a := strings.Index(s, "«")
	b := strings.Index(s, "»")
	if a < 0 || b < a {
		t.Fatalf("test line without «span»: %q", s)
	}
	line = s[:a] + s[a+len("«"):b] + s[b+len("»"):]
	return line, a, b - len("«")
}

func describe(fs []tokenwatch.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Rule)
		b.WriteString("[")
		b.WriteString(itoa(f.Start))
		b.WriteString(":")
		b.WriteString(itoa(f.End))
		b.WriteString("] ")
	}
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

// fill repeats pattern to exactly n bytes.
func fill(pattern string, n int) string {
	return strings.Repeat(pattern, n/len(pattern)+1)[:n]
}
