package detect

import (
	"strings"
	"testing"
)

// Context tests: the same credentials in the places real logs put them. Each
// line marks the expected span with «»; kind, scheme and param are checked,
// and the fingerprint must equal that of the plain token (encoded forms are
// decoded before fingerprinting).
func TestContexts(t *testing.T) {
	s := newTestScanner(t)
	enc := func(tok, dot string) string { return strings.ReplaceAll(tok, ".", dot) }
	opaque := "2YotnFZFEjr1zCsicMWpAA"
	slashTok := "ab/cd+ef/GH12ij34KL56mn=="
	cases := []struct {
		name, line, kind, scheme, param, plain string
	}{
		// JWT followed by every delimiter logs use.
		{"jwt-amp", "GET /api?jwt=«" + jwtHS + "»&x=1", KindJWT, "", "", jwtHS},
		{"jwt-comma", "token «" + jwtHS + "», next", KindJWT, "", "", jwtHS},
		{"jwt-pipe", "auth|«" + jwtHS + "»|200", KindJWT, "", "", jwtHS},
		{"jwt-paren", "validate(«" + jwtHS + "»)", KindJWT, "", "", jwtHS},
		{"jwt-bracket", "tokens=[«" + jwtHS + "»]", KindJWT, "", "", jwtHS},
		{"jwt-brace", "{t=«" + jwtHS + "»}", KindJWT, "", "", jwtHS},
		{"jwt-dquote", `"«` + jwtHS + `»"`, KindJWT, "", "", jwtHS},
		{"jwt-squote", `'«` + jwtHS + `»'`, KindJWT, "", "", jwtHS},
		{"jwt-crlf", "Authorization: Bearer «" + jwtHS + "»\r", KindJWT, "Bearer", "", jwtHS},
		{"jwt-path", "GET /reset/«" + jwtHS + "» HTTP/1.1", KindJWT, "", "", jwtHS},
		// URL-encoded.
		{"url-dot", "GET /cb?id_token=«" + enc(jwtHS, "%2E") + "»&state=1", KindJWT, "", "id_token", jwtHS},
		{"url-dot-lower", "next=%2Fapp%3Ftoken%3D«" + enc(jwtHS, "%2e") + "»", KindJWT, "", "token", jwtHS},
		{"url-header", "h=Authorization%3A%20Bearer%20«" + opaque + "»&x=1", KindBearer, "Bearer", "", opaque},
		{"url-bearer-plus", "auth=Bearer+«" + opaque + "»", KindBearer, "Bearer", "", opaque},
		{"url-param", "redirect=https%3A%2F%2Fapp%2Fcb%3Faccess_token%3D«" + opaque + "»%26state%3Dx", KindOAuthAccessToken, "", "access_token", opaque},
		{"url-jwt-param", "u=%2Fcb%3Faccess_token%3D«" + jwtHS + "»%26x", KindJWT, "", "access_token", jwtHS},
		{"url-double", "next=%2Fcb%253Fid_token%253D«" + enc(jwtHS, "%252E") + "»%2526x", KindJWT, "", "id_token", jwtHS},
		{"url-slash", "Authorization: Bearer «" + strings.ReplaceAll(slashTok, "/", "%2F") + "»", KindBearer, "Bearer", "", slashTok},
		// JSON-escaped.
		{"json-u002e", `{"msg":"token=«` + enc(jwtHS, `\u002e`) + `»"}`, KindJWT, "", "token", jwtHS},
		{"json-U002E", `{"t":"«` + enc(jwtHS, `\u002E`) + `»"}`, KindJWT, "", "", jwtHS},
		{"json-slash", `{"authorization":"Bearer «` + strings.ReplaceAll(slashTok, "/", `\/`) + `»"}`, KindBearer, "Bearer", "", slashTok},
		{"json-escaped-field", `{"log":"{\"access_token\":\"«` + opaque + `»\",\"expires_in\":3600}"}`, KindOAuthAccessToken, "", "access_token", opaque},
		{"json-newline-bearer", `{"msg":"headers:\nAuthorization: Bearer «` + opaque + `»\n"}`, KindBearer, "Bearer", "", opaque},
		{"json-escaped-jwt-after-newline", `{"msg":"line1\n«` + jwtHS + `»"}`, KindJWT, "", "", jwtHS},
		// Stack traces and dumps.
		{"java", "Caused by: com.example.auth.InvalidTokenException: token «" + jwtRS + "» rejected at com.example.auth.Validator.check(Validator.java:42)", KindJWT, "", "", jwtRS},
		{"python-repr", "DEBUG request headers: {'Authorization': 'Bearer «" + opaque + "»', 'Accept': '*/*'}", KindBearer, "Bearer", "", opaque},
		{"go-map", "headers=map[Authorization:[Bearer «" + opaque + "»] User-Agent:[Go-http-client/1.1]]", KindBearer, "Bearer", "", opaque},
		{"go-struct", `&http.Request{Header:http.Header{"Authorization":[]string{"Bearer «` + opaque + `»"}}}`, KindBearer, "Bearer", "", opaque},
		// Command lines and CI.
		{"curl", `curl -sS -H 'Authorization: Bearer «` + jwtHS + `»' https://api.example.com/v1/me`, KindJWT, "Bearer", "", jwtHS},
		{"curl-basic", `curl -H "Authorization: Basic «dXNlcjpwYXNzd29yZA==»" http://x`, KindBasic, "Basic", "", "dXNlcjpwYXNzd29yZA=="},
		{"k8s-cri", "2026-11-25T08:14:05.123456789Z stdout F Authorization: Bearer «" + opaque + "»", KindBearer, "Bearer", "", opaque},
		{"ansi-colour", "\x1b[2m12:00:01\x1b[0m \x1b[33mBearer «" + opaque + "»\x1b[0m", KindBearer, "Bearer", "", opaque},
		{"ansi-colour-jwt", "\x1b[1;31mBearer «" + jwtHS + "»", KindJWT, "Bearer", "", jwtHS},
		{"gha", "##[debug]Evaluating: format('Bearer {0}', secrets.TOKEN) => 'Bearer «" + opaque + "»'", KindBearer, "Bearer", "", opaque},
		// Access logs.
		{"nginx", `10.0.0.1 - - [25/Nov/2026:08:14:05 +0000] "GET /api/me?access_token=«` + jwtHS + `» HTTP/1.1" 200 512 "-" "curl/8.4.0"`, KindJWT, "", "access_token", jwtHS},
		{"iis", "2026-11-25 08:14:05 10.0.0.5 GET /api/me access_token=«" + opaque + "» 443 - 10.0.0.9 Mozilla/5.0+(Windows+NT+10.0) - 200 0 0 12", KindOAuthAccessToken, "", "access_token", opaque},
		{"iis-header", "2026-11-25 08:14:05 GET /api - 443 - 10.0.0.9 Bearer+«" + opaque + "» 200", KindBearer, "Bearer", "", opaque},
		{"envoy-json", `{"start_time":"2026-11-25T08:14:05.123Z","method":"GET","authorization":"Bearer «` + jwtRS + `»","response_code":200}`, KindJWT, "Bearer", "", jwtRS},
		{"apache-cookie", `10.0.0.1 - - [25/Nov/2026:08:14:05 +0000] "GET / HTTP/1.1" 200 5 "Cookie: _ga=GA1.2.3; session=«` + opaque + `»"`, KindSessionCookie, "", "Cookie:session", opaque},
		{"cookie-jwt", "Cookie: theme=dark; id=«" + jwtHS + "»", KindJWT, "", "Cookie:id", jwtHS},
		{"header-dump", "> GET /v1 HTTP/1.1\\r\\n> DPoP: x\\r\\n> Authorization: DPoP «" + opaque + "»\\r\\n", KindBearer, "DPoP", "", opaque},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			line, start, end := marked(t, c.line)
			fs := s.Scan([]byte(line), nil)
			if len(fs) != 1 {
				t.Fatalf("%q: got %d findings %s, want 1", line, len(fs), describe(fs))
			}
			f := fs[0]
			if f.Start != start || f.End != end || f.Kind != c.kind || f.Scheme != c.scheme || f.Param != c.param {
				t.Fatalf("%q:\n got %s %s[%d:%d] scheme=%q param=%q\nwant %s[%d:%d] scheme=%q param=%q", line, f.Kind, f.Rule, f.Start, f.End, f.Scheme, f.Param, c.kind, start, end, c.scheme, c.param)
			}
			if want := s.Fingerprint([]byte(c.plain)); f.Fingerprint != want {
				t.Errorf("fingerprint %s, want the plain token's %s", f.Fingerprint, want)
			}
			if f.Redacted != Redact([]byte(c.plain)) {
				t.Errorf("redacted %q, want %q", f.Redacted, Redact([]byte(c.plain)))
			}
		})
	}
}

// TestBearerJWTIsOneFinding: a JWT after Bearer is one finding of kind jwt
// with the scheme, not a bearer finding plus a jwt finding.
func TestBearerJWTIsOneFinding(t *testing.T) {
	s := newTestScanner(t)
	line := "Authorization: Bearer " + jwtRS
	fs := s.Scan([]byte(line), nil)
	if len(fs) != 1 || fs[0].Kind != KindJWT || fs[0].Scheme != "Bearer" || fs[0].JWT == nil || fs[0].JWT.Iss != "https://idp.example.com" {
		t.Fatalf("got %s %+v", describe(fs), fs)
	}
}

// TestManyFindingsInOrder: several credentials on one line come out in line
// order, none overlapping, and dst is appended to.
func TestManyFindingsInOrder(t *testing.T) {
	s := newTestScanner(t)
	gh := ghToken("ghp_", "abcdefghijklmnopqrstuvwxyz0123")
	line := `Authorization: Bearer ` + jwtHS + ` refresh_token=tGzv3JOkF0XG5Qx2TlKWIA key=` + gh + ` AKIAQYLPMN5HHHFPZAM2 wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLQKE`
	dst := s.Scan([]byte("Bearer "+jwtNone), nil)
	fs := s.Scan([]byte(line), dst)
	want := []string{"jwt.compact", "jwt.compact", "oauth.refresh_token", "github.classic_pat", "aws.access_key_id", "aws.secret_access_key"}
	if len(fs) != len(want) {
		t.Fatalf("got %s", describe(fs))
	}
	for i, f := range fs {
		if f.Rule != want[i] {
			t.Errorf("finding %d: %s, want %s", i, f.Rule, want[i])
		}
		if i > 1 && f.Start < fs[i-1].End {
			t.Errorf("finding %d overlaps the previous one", i)
		}
	}
}

// TestLongLines: credentials at the start, middle and end of multi-megabyte
// lines, and pathological lines full of anchors, scan in one pass (the
// benchmark BenchmarkScanAdversarial shows linear time).
func TestLongLines(t *testing.T) {
	s := newTestScanner(t)
	g := newCorpusGen(7)
	var b strings.Builder
	for b.Len() < 4<<20 {
		b.WriteString(g.cleanLine())
		b.WriteByte(' ')
	}
	filler := b.String()
	line := "Bearer " + jwtHS + " " + filler + " access_token=" + jwtRS + " " + filler + " " + jwtNone
	fs := s.Scan([]byte(line), nil)
	if len(fs) != 3 || fs[0].Start != 7 || fs[2].End != len(line) {
		t.Fatalf("got %s", describe(fs))
	}
	for _, bad := range []string{
		strings.Repeat("eyJ", 1<<20),
		strings.Repeat("eyJhbGciOiJIUzI1NiJ9..", 1<<16),
		strings.Repeat("Bearer ", 1<<19),
		strings.Repeat("token=", 1<<19),
		strings.Repeat("a", 1<<22) + "=eyJ",
		strings.Repeat("Cookie: a=b; ", 1<<16),
		strings.Repeat("%2E", 1<<20),
		strings.Repeat("code=1 ", 1<<19),
		strings.Repeat("eyJhbGciOiJIUzI1NiJ9.. Bearer token=x access_token: code=1 Cookie: a=b; ghp_x ", 1<<15),
	} {
		if fs := s.Scan([]byte(bad), nil); len(fs) != 0 {
			t.Errorf("pathological line of %d bytes: got %d findings", len(bad), len(fs))
		}
	}
	// A token longer than the limit is not reported.
	huge := mkJWT(`{"alg":"HS256"}`, `{"x":"`+strings.Repeat("y", 20000)+`"}`, sig43)
	if fs := s.Scan([]byte("t="+huge), nil); len(fs) != 0 {
		t.Errorf("token over max length reported: %s", describe(fs))
	}
}
