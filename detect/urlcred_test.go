package detect

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// TestURLPasswords: passwords in URL userinfo, with the kind, the scheme as
// Param, and the fingerprinted token: base64(user:password) decoded, or the
// known token's own value when the password is one.
func TestURLPasswords(t *testing.T) {
	s := newTestScanner(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	gh := ghToken("ghp_", "0123456789abcdefghijABCDEFGHIJ")
	type want struct{ kind, rule, param, token string }
	cases := []struct {
		name string
		line string // spans marked «…», in order
		want []want
	}{
		{"postgres", "postgres://app:«S3cr3tPw»@db:5432/x",
			[]want{{KindURLPassword, "url.userinfo", "postgres", b64("app:S3cr3tPw")}}},
		{"mongodb+srv", "mongodb+srv://u:«Xk9vQ2mZ7w»@cluster/",
			[]want{{KindURLPassword, "url.userinfo", "mongodb+srv", b64("u:Xk9vQ2mZ7w")}}},
		{"redis-no-user", "redis://:«r3d1sPassw0rd»@host:6379",
			[]want{{KindURLPassword, "url.userinfo", "redis", b64(":r3d1sPassw0rd")}}},
		{"percent-encoded", "postgres://a%40b:«p%40ss%2Fw0rd»@db/x",
			[]want{{KindURLPassword, "url.userinfo", "postgres", b64("a@b:p@ss/w0rd")}}},
		{"json", `{"dsn":"amqp://svc:«Rabb1tMQ-pw»@rabbit:5672/","url":"https://x.example.com/a@b"}`,
			[]want{{KindURLPassword, "url.userinfo", "amqp", b64("svc:Rabb1tMQ-pw")}}},
		{"two-urls", "primary=postgres://a:«Passw0rd1»@db1/x replica=postgres://b:«Passw0rd2»@db2/x",
			[]want{{KindURLPassword, "url.userinfo", "postgres", b64("a:Passw0rd1")}, {KindURLPassword, "url.userinfo", "postgres", b64("b:Passw0rd2")}}},
		{"github-token", "remote: https://x-access-token:«" + gh + "»@github.com/org/repo.git",
			[]want{{KindGitHubPAT, "github.classic_pat", "https", gh}}},
		{"jwt-password", "wss://token:«" + jwtHS + "»@events.example.com/ws",
			[]want{{KindJWT, "jwt.compact", "wss", jwtHS}}},
		{"same-as-basic", "https://alice:«wonderland42»@x.example.com Authorization: Basic «" + b64("alice:wonderland42") + "»",
			[]want{{KindURLPassword, "url.userinfo", "https", b64("alice:wonderland42")}, {KindBasic, "authorization.basic", "", b64("alice:wonderland42")}}},
		{"bearer-after", "redis://:«r3d1sPassw0rd»@h Authorization: Bearer «2YotnFZFEjr1zCsicMWpAA»",
			[]want{{KindURLPassword, "url.userinfo", "redis", b64(":r3d1sPassw0rd")}, {KindBearer, "authorization.bearer", "", "2YotnFZFEjr1zCsicMWpAA"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			line, spans := markedAll(t, c.line)
			fs := s.Scan([]byte(line), nil)
			if len(fs) != len(c.want) || len(spans) != len(c.want) {
				t.Fatalf("%q: got %s, want %d findings", line, describe(fs), len(c.want))
			}
			for k, w := range c.want {
				f := fs[k]
				if f.Kind != w.kind || f.Rule != w.rule || f.Param != w.param || f.Start != spans[k][0] || f.End != spans[k][1] {
					t.Errorf("finding %d: got %s %s[%d:%d] param=%q, want %s %s[%d:%d] param=%q", k, f.Kind, f.Rule, f.Start, f.End, f.Param, w.kind, w.rule, spans[k][0], spans[k][1], w.param)
				}
				if f.Fingerprint != s.Fingerprint([]byte(w.token)) || f.Redacted != Redact([]byte(w.token)) {
					t.Errorf("finding %d: fingerprint/preview not those of the expected token", k)
				}
			}
		})
	}
}

// TestURLPasswordRedaction: replacing each finding by tokenwatch's marker
// leaves no byte run of the password in the line, the preview does not hold
// the password, and the redacted line has nothing left to find.
func TestURLPasswordRedaction(t *testing.T) {
	s := newTestScanner(t)
	for _, pw := range []string{"S3cr3tPw", "p%40ss%3Aw0rd", "r3d1sPassw0rd-and-a-long-tail-1234", "p@ss!w0rd"} {
		for _, tmpl := range []string{
			"postgres://app:%s@db:5432/x", "redis://:%s@cache:6379", `{"dsn":"amqp://svc:%s@rabbit/"}`,
			"git push https://deploy:%s@git.example.com/org/repo.git main",
		} {
			line := []byte(strings.Replace(tmpl, "%s", pw, 1))
			fs := s.Scan(line, nil)
			if len(fs) != 1 || fs[0].Kind != KindURLPassword || string(line[fs[0].Start:fs[0].End]) != pw {
				t.Fatalf("%q: got %s", line, describe(fs))
			}
			f := fs[0]
			red := append(append(append([]byte(nil), line[:f.Start]...), "[REDACTED:"+f.Kind+":"+f.Fingerprint.String()[:8]+"]"...), line[f.End:]...)
			if bytes.Contains(red, []byte(pw)) {
				t.Errorf("redacted %q still holds the password", red)
			}
			if strings.Contains(f.Redacted, pw) || strings.Contains(f.Redacted, strings.ReplaceAll(pw, "%40", "@")) {
				t.Errorf("preview %q holds the password", f.Redacted)
			}
			if got := s.Scan(red, nil); len(got) != 0 {
				t.Errorf("redacted line %q: got %s", red, describe(got))
			}
		}
	}
}

// TestURLAuthorityLinear: "://" anchors are in every URL; each authority is
// walked once, and a megabyte line of URLs allocates nothing.
func TestURLAuthorityLinear(t *testing.T) {
	s := newTestScanner(t)
	for _, l := range []string{
		strings.Repeat("://", 400000),
		strings.Repeat("http://a:b", 200000) + "@host",
		strings.Repeat("https://example.com:8443/a@b?c=d ", 40000),
		"x://" + strings.Repeat("a:", 500000) + "@h",
	} {
		b := []byte(l)
		fs := s.Scan(b, nil)
		if len(fs) != 0 {
			t.Errorf("findings %s in a line without a password", describe(fs))
		}
		if raceEnabled {
			continue
		}
		if allocs := testing.AllocsPerRun(2, func() { s.Scan(b, nil) }); allocs != 0 {
			t.Errorf("%v allocations on a clean URL line", allocs)
		}
	}
}
