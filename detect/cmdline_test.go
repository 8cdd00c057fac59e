package detect

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestCommandLines: credentials on curl/wget command lines, with the kind,
// the option as Param, and the token that is fingerprinted: base64(user:password)
// (the Basic credential the command sends) or, for wget without a user, the
// password. Every finding of the line is checked, in order.
func TestCommandLines(t *testing.T) {
	s := newTestScanner(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	gh := ghToken("ghs_", "0123456789abcdefghijABCDEFGHIJ")
	type want struct{ kind, rule, param, token string }
	cases := []struct {
		name string
		line string // spans marked «…», in order
		want []want
	}{
		{"curl-u", "curl -u «deploy:yLcVk08rjlO7Pj» https://x",
			[]want{{KindCLIPassword, "curl.user", "-u", b64("deploy:yLcVk08rjlO7Pj")}}},
		{"cluster", "curl -sSu «deploy:yLcVk08rjlO7Pj» https://x",
			[]want{{KindCLIPassword, "curl.user", "-u", b64("deploy:yLcVk08rjlO7Pj")}}},
		{"long-eq", "curl --user=«deploy:yLcVk08rjlO7Pj» https://x",
			[]want{{KindCLIPassword, "curl.user", "--user", b64("deploy:yLcVk08rjlO7Pj")}}},
		{"proxy", "curl -U «p:Pr0xyPass» --proxy-user «q:Pr0xyPass2» https://x",
			[]want{{KindCLIPassword, "curl.user", "-U", b64("p:Pr0xyPass")}, {KindCLIPassword, "curl.user", "--proxy-user", b64("q:Pr0xyPass2")}}},
		// Anchors between the command word and the value come first.
		{"bearer-before", "curl -H 'Authorization: Bearer «2YotnFZFEjr1zCsicMWpAA»' -u «svc:hK9mQ2xZ» https://x",
			[]want{{KindBearer, "authorization.bearer", "", "2YotnFZFEjr1zCsicMWpAA"}, {KindCLIPassword, "curl.user", "-u", b64("svc:hK9mQ2xZ")}}},
		{"bearer-after", "curl -u «svc:hK9mQ2xZ» -H 'Authorization: Bearer «2YotnFZFEjr1zCsicMWpAA»' https://x",
			[]want{{KindCLIPassword, "curl.user", "-u", b64("svc:hK9mQ2xZ")}, {KindBearer, "authorization.bearer", "", "2YotnFZFEjr1zCsicMWpAA"}}},
		{"two-commands", "curl -u «a:Passw0rd1» https://x && curl -u «b:Passw0rd2» https://y",
			[]want{{KindCLIPassword, "curl.user", "-u", b64("a:Passw0rd1")}, {KindCLIPassword, "curl.user", "-u", b64("b:Passw0rd2")}}},
		// A known token as the password keeps its own kind.
		{"github-password", "curl -u x-access-token:«" + gh + "» https://api.github.com",
			[]want{{KindGitHubServer, "github.server_to_server", "-u", gh}}},
		{"jwt-password", "curl -u token:«" + jwtHS + "» https://x",
			[]want{{KindJWT, "jwt.compact", "-u", jwtHS}}},
		{"stripe-user", "curl https://api.stripe.com/v1/charges -u «sk_live_4eC39HqLyjWDarjtT1zdp7dc»:",
			[]want{{KindStripeSecret, "stripe.secret_key", "", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"}}},
		// curl -v prints the Basic header of the same credential: one fingerprint.
		{"verbose", "curl -v -u «alice:wonderland42» https://x > Authorization: Basic «" + b64("alice:wonderland42") + "»",
			[]want{{KindCLIPassword, "curl.user", "-u", b64("alice:wonderland42")}, {KindBasic, "authorization.basic", "", b64("alice:wonderland42")}}},
		{"wget-pair", "wget --user=alice --password=«wonderland42» https://x",
			[]want{{KindCLIPassword, "wget.password", "--password", b64("alice:wonderland42")}}},
		{"wget-user-after", "wget --http-password «wonderland42» --user alice https://x",
			[]want{{KindCLIPassword, "wget.password", "--http-password", b64("alice:wonderland42")}}},
		{"wget-http-user", "wget --user=bob --http-user=alice --http-password=«wonderland42» https://x",
			[]want{{KindCLIPassword, "wget.password", "--http-password", b64("alice:wonderland42")}}},
		{"wget-proxy-own-user", "wget --user=bob --proxy-password=«Pr0xyPass» https://x",
			[]want{{KindCLIPassword, "wget.password", "--proxy-password", "Pr0xyPass"}}},
		{"wget-option-in-url-first", "wget https://x/reset-password --user=a --password=«wonderland42» && wget --password «Pa55w0rd9» y",
			[]want{{KindCLIPassword, "wget.password", "--password", b64("a:wonderland42")}, {KindCLIPassword, "wget.password", "--password", "Pa55w0rd9"}}},
		{"wget-no-user", "wget --password=«wonderland42» https://x",
			[]want{{KindCLIPassword, "wget.password", "--password", "wonderland42"}}},
		{"json-escaped", `{"log":"+ curl -u \"«svc:hK9mQ2xZ»\" https://x\n+ wget --password=«Pa55w0rd9» y","stream":"stderr"}`,
			[]want{{KindCLIPassword, "curl.user", "-u", b64("svc:hK9mQ2xZ")}, {KindCLIPassword, "wget.password", "--password", "Pa55w0rd9"}}},
		{"no-cred-then-other", "curl -u user https://x?access_token=«2YotnFZFEjr1zCsicMWpAA»",
			[]want{{KindOAuthAccessToken, "oauth.access_token", "access_token", "2YotnFZFEjr1zCsicMWpAA"}}},
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

// markedAll splits a line with several «…» spans into the line and the spans.
func markedAll(t testing.TB, s string) (string, [][2]int) {
	t.Helper()
	var b strings.Builder
	var spans [][2]int
	for {
		a := strings.Index(s, "«")
		if a < 0 {
			b.WriteString(s)
			return b.String(), spans
		}
		z := strings.Index(s, "»")
		if z < a {
			t.Fatalf("unbalanced «» in %q", s)
		}
		b.WriteString(s[:a])
		start := b.Len()
		b.WriteString(s[a+len("«") : z])
		spans = append(spans, [2]int{start, b.Len()})
		s = s[z+len("»"):]
	}
}

// TestCommandLineLinear: a multi-megabyte line of command words is parsed
// once per command, not once per word (a command inside another's extent is
// not parsed again).
func TestCommandLineLinear(t *testing.T) {
	s := newTestScanner(t)
	l, spans := markedAll(t, strings.Repeat("curl wget curl -H x ", 200000)+"-u «admin:Zq1Lm7Wx9»")
	fs := s.Scan([]byte(l), nil)
	// The value is found by the one command parse whose extent reaches it.
	if len(fs) != 1 || fs[0].Start != spans[0][0] || fs[0].End != spans[0][1] {
		t.Fatalf("got %s", describe(fs))
	}
	clean := []byte(l[:strings.LastIndex(l, "-u ")])
	allocs := testing.AllocsPerRun(2, func() { s.Scan(clean, nil) })
	if allocs != 0 && !raceEnabled {
		t.Errorf("%v allocations on a clean command line", allocs)
	}
	// wget's anchor is its option: the look-back for "wget " is linear too.
	for _, l := range []string{
		strings.Repeat("x-password ", 400000),
		"wget " + strings.Repeat("--password ", 400000),
		strings.Repeat("wget x | y --password ", 200000),
	} {
		if fs := s.Scan([]byte(l), nil); len(fs) != 0 {
			t.Errorf("findings %s in a line of placeholders", describe(fs))
		}
	}
}
