package policy

import (
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const testPolicy = `
defaults:
  max_lifetime: 1h
clients:
  - issuer: "https://idp.example.com"
    client_id: "web-*"
    allowed_scopes: ["orders:read", "profile:*"]
  - client_id: "bank-app"
    sender_constrained: true
  - client_id: "ci-*"
    workload: true
    networks: ["35.190.0.0/16"]
    asns: [64500]
services:
  - service: "billing-*"
    audiences: ["https://billing.example.com"]
  - service: "api-gateway"
    audiences: ["https://api.example.com", "https://*.api.example.com"]
windows:
  scope_escalation: 24h
  refresh_reuse: 24h
  dispensary: 10m
dispensary_min_subjects: 3
`

func newEngine(t testing.TB, policyYAML string) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	if policyYAML != "" {
		p := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(p, []byte(policyYAML), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg.File = p
	}
	cfg.ReloadInterval = 0
	e, err := New(cfg, WithClock(func() time.Time { return t0.Add(time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

var fpSeq byte

// leak makes a use a leak sighting of subject sub's token in service svc's log.
func leak(svc, sub string) func(*tokenwatch.TokenUse) {
	return func(u *tokenwatch.TokenUse) { u.Leak, u.Service, u.IP, u.JWT.Sub = true, svc, netip.Addr{}, sub }
}

// use builds an auth-log use of a JWT; mods adjust it.
func use(at time.Duration, mods ...func(*tokenwatch.TokenUse)) tokenwatch.TokenUse {
	fpSeq++
	u := tokenwatch.TokenUse{
		Fingerprint: tokenwatch.Fingerprint{fpSeq},
		Kind:        "jwt", Redacted: "eyJhbG…abcd", Scheme: "Bearer",
		Time:   t0.Add(at),
		IP:     netip.MustParseAddr("81.2.69.10"),
		Geo:    tokenwatch.Geo{ASN: 2856, Country: "GB", City: "London"},
		Status: 200, Service: "api-gateway",
		Origin: tokenwatch.Origin{Source: "auth", Partition: 0, Offset: int64(fpSeq)},
		JWT: &tokenwatch.JWTInfo{Alg: "RS256", Iss: "https://idp.example.com", Sub: "alice", Aud: []string{"https://api.example.com"},
			ClientID: "web-portal", Scope: []string{"orders:read"}, Iat: t0.Add(at).Unix() - 60, Exp: t0.Add(at).Unix() + 3000, Jti: fmt.Sprintf("j%d", fpSeq)},
	}
	for _, m := range mods {
		m(&u)
	}
	return u
}

func types(as []tokenwatch.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Type)
	}
	return out
}

func run(e *Engine, uses ...tokenwatch.TokenUse) []tokenwatch.Alert {
	var out []tokenwatch.Alert
	for i := range uses {
		out = e.Check(&uses[i], out)
	}
	return out
}

func TestFindings(t *testing.T) {
	sameFP := func(fp byte) func(*tokenwatch.TokenUse) {
		return func(u *tokenwatch.TokenUse) { u.Fingerprint = tokenwatch.Fingerprint{200, fp} }
	}
	refresh := func(u *tokenwatch.TokenUse) {
		u.Kind, u.Param, u.JWT, u.Scheme = "oauth_refresh_token", "refresh_token", nil, ""
	}
	for _, tc := range []struct {
		name string
		uses []tokenwatch.TokenUse
		want []string
	}{
		{"clean use", []tokenwatch.TokenUse{use(0)}, nil},
		// lifetime_policy_violation
		{"lifetime over policy", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.JWT.Exp = u.JWT.Iat + 8*3600 })}, []string{TypeLifetime}},
		{"lifetime exactly at policy", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.JWT.Exp = u.JWT.Iat + 3600 })}, nil},
		{"lifetime once per client and day", []tokenwatch.TokenUse{
			use(0, func(u *tokenwatch.TokenUse) { u.JWT.Exp = u.JWT.Iat + 8*3600 }),
			use(time.Minute, func(u *tokenwatch.TokenUse) { u.JWT.Exp = u.JWT.Iat + 9*3600 }),
			use(2*time.Minute, func(u *tokenwatch.TokenUse) { u.JWT.Exp = u.JWT.Iat + 9*3600 }),
		}, []string{TypeLifetime}},
		{"lifetime of ID tokens is not an access-token lifetime", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) {
			u.JWT.Exp, u.JWT.HasNonce, u.Scheme, u.JWT.Aud = u.JWT.Iat+8*3600, true, "", []string{"web-portal"}
		})}, nil},
		// scope_policy_violation
		{"scope outside allowed set", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"orders:read", "admin:all"} })}, []string{TypeScope}},
		{"scope glob allowed", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"profile:write"} })}, nil},
		{"client without scope policy", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.JWT.ClientID, u.JWT.Scope = "other", []string{"admin:all"} })}, nil},
		// scope_escalation
		{"scopes grow between tokens", []tokenwatch.TokenUse{
			use(0, func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"orders:read"} }),
			use(time.Hour, func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"orders:read", "profile:write"} }),
		}, []string{TypeScopeEscalation}},
		{"scopes grow, newer token arrives first", []tokenwatch.TokenUse{
			use(time.Hour, func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"orders:read", "profile:write"} }),
			use(0, func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"orders:read"} }),
		}, []string{TypeScopeEscalation}},
		{"same scopes on a new token", []tokenwatch.TokenUse{use(0), use(time.Hour)}, nil},
		{"fewer scopes on a new token", []tokenwatch.TokenUse{
			use(0, func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"orders:read", "profile:read"} }),
			use(time.Hour, func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"orders:read"} }),
		}, nil},
		{"scopes grow after the window", []tokenwatch.TokenUse{
			use(0),
			use(30*time.Hour, func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"orders:read", "profile:write"} }),
		}, nil},
		{"another subject's scopes", []tokenwatch.TokenUse{
			use(0),
			use(time.Hour, func(u *tokenwatch.TokenUse) { u.JWT.Sub, u.JWT.Scope = "bob", []string{"orders:read", "profile:write"} }),
		}, nil},
		// audience_mismatch
		{"token for another audience", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.Service = "billing-api" })}, []string{TypeAudienceMismatch}},
		{"audience glob matches", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.JWT.Aud = []string{"https://eu.api.example.com"} })}, nil},
		{"service without audience policy", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.Service = "search" })}, nil},
		// id_token_as_access_token
		{"id token as bearer", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) {
			u.JWT.HasNonce, u.JWT.HasAtHash, u.JWT.Aud = true, true, []string{"web-portal"}
		})}, []string{TypeIDTokenAsAccess}},
		{"id token in a login callback is not a bearer use", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) {
			u.JWT.HasNonce, u.Scheme, u.Param, u.JWT.Aud = true, "", "id_token", []string{"web-portal"}
		})}, nil},
		{"access token with a nonce for another client is not an id token", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) {
			u.JWT.HasNonce = true
		})}, nil},
		// bound_token_as_bearer
		{"DPoP-bound token with Bearer", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.JWT.CnfJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" })}, []string{TypeBoundAsBearer}},
		{"DPoP-bound token without proof header", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) {
			u.JWT.CnfJKT, u.Scheme, u.HeadersLogged = "jkt", "DPoP", true
		})}, []string{TypeBoundAsBearer}},
		{"DPoP-bound token used correctly", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) {
			u.JWT.CnfJKT, u.Scheme, u.HeadersLogged, u.DPoPProof = "jkt", "DPoP", true, true
		})}, nil},
		{"mTLS-bound token with Bearer (RFC 8705)", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.JWT.CnfX5T = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" })}, nil},
		// sender_constraint_missing
		{"unbound token of a client that must be bound", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.JWT.ClientID = "bank-app" })}, []string{TypeSenderConstraint}},
		{"bound token of that client", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) {
			u.JWT.ClientID, u.JWT.CnfJKT, u.Scheme, u.DPoPProof = "bank-app", "jkt", "DPoP", true
		})}, nil},
		// refresh tokens
		{"refresh token in an app log", []tokenwatch.TokenUse{use(0, refresh, func(u *tokenwatch.TokenUse) { u.Leak, u.IP = true, netip.Addr{} })}, []string{TypeRefreshInLog}},
		{"refresh token from two networks", []tokenwatch.TokenUse{
			use(0, refresh, sameFP(1)),
			use(time.Hour, refresh, sameFP(1), func(u *tokenwatch.TokenUse) {
				u.IP, u.Geo = netip.MustParseAddr("1.128.0.1"), tokenwatch.Geo{ASN: 1221}
			}),
		}, []string{TypeRefreshInLog, TypeRefreshReuse}},
		{"refresh token from one network", []tokenwatch.TokenUse{use(0, refresh, sameFP(2)), use(time.Hour, refresh, sameFP(2))}, []string{TypeRefreshInLog}},
		{"refresh token from two networks days apart", []tokenwatch.TokenUse{
			use(0, refresh, sameFP(3)),
			use(50*time.Hour, refresh, sameFP(3), func(u *tokenwatch.TokenUse) {
				u.IP, u.Geo = netip.MustParseAddr("1.128.0.1"), tokenwatch.Geo{ASN: 1221}
			}),
		}, []string{TypeRefreshInLog}},
		// token_dispensary
		{"endpoint leaking many subjects", []tokenwatch.TokenUse{
			use(0, leak("legacy-auth", "s1")), use(time.Minute, leak("legacy-auth", "s2")), use(2*time.Minute, leak("legacy-auth", "s3")), use(3*time.Minute, leak("legacy-auth", "s4")),
		}, []string{TypeDispensary}},
		{"one subject leaked many times", []tokenwatch.TokenUse{
			use(0, leak("chatty", "s1")), use(time.Minute, leak("chatty", "s1")), use(2*time.Minute, leak("chatty", "s1")),
		}, nil},
		{"leaks spread beyond the window", []tokenwatch.TokenUse{
			use(0, leak("slow", "s1")), use(20*time.Minute, leak("slow", "s2")), use(40*time.Minute, leak("slow", "s3")),
		}, nil},
		// workload_token_off_network
		{"workload off network", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) { u.JWT.ClientID = "ci-deployer" })}, []string{TypeWorkloadOffNetwork}},
		{"workload on its network", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) {
			u.JWT.ClientID, u.IP, u.Geo = "ci-deployer", netip.MustParseAddr("35.190.3.4"), tokenwatch.Geo{ASN: 15169}
		})}, nil},
		{"workload on its ASN", []tokenwatch.TokenUse{use(0, func(u *tokenwatch.TokenUse) {
			u.JWT.ClientID, u.Geo.ASN = "ci-deployer", 64500
		})}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, testPolicy)
			got := types(run(e, tc.uses...))
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("findings = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDefaultPolicy(t *testing.T) {
	e := newEngine(t, "")
	sub := func(s string) func(*tokenwatch.TokenUse) { return func(u *tokenwatch.TokenUse) { u.JWT.Sub = s } }
	got := types(run(e,
		use(0, sub("a"), func(u *tokenwatch.TokenUse) { u.JWT.Exp = u.JWT.Iat + 2*3600 }), // > 1h
		use(0, sub("b"), func(u *tokenwatch.TokenUse) {
			u.JWT.HasNonce, u.JWT.Aud, u.JWT.ClientID = true, []string{"spa"}, "spa" // ID token as bearer
		}),
		use(0, sub("c"), func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"anything:at-all"} }), // no scope policy
		use(0, sub("d"), func(u *tokenwatch.TokenUse) { u.Service = "billing-api" }),                 // no audience policy
	))
	if strings.Join(got, ",") != TypeLifetime+","+TypeIDTokenAsAccess {
		t.Errorf("default policy findings = %v", got)
	}
}

func TestLifetimeDaySummary(t *testing.T) {
	e := newEngine(t, testPolicy)
	long := func(at time.Duration) tokenwatch.TokenUse {
		return use(at, func(u *tokenwatch.TokenUse) { u.JWT.Exp = u.JWT.Iat + 8*3600 })
	}
	as := run(e, long(0), long(time.Hour), long(2*time.Hour))
	if len(as) != 1 || as[0].Update != 0 {
		t.Fatalf("first day: %v", types(as))
	}
	first := as[0]
	// Event time passes midnight: the day's summary is an update of the same alert.
	as = run(e, long(20*time.Hour))
	if len(as) != 2 {
		t.Fatalf("after midnight: %v", types(as))
	}
	sum := as[0]
	if sum.ID != first.ID || sum.Update != 1 || !strings.Contains(sum.Summary, "3 access tokens") {
		t.Errorf("summary = %+v", sum)
	}
	if as[1].ID == first.ID || as[1].Update != 0 {
		t.Errorf("new day's first finding = %+v", as[1])
	}
	// Flush closes the open day once.
	fl := e.Flush(nil)
	if len(fl) != 1 || !strings.Contains(fl[0].Summary, "1 access tokens") {
		t.Errorf("flush = %+v", fl)
	}
	if again := e.Flush(nil); len(again) != 0 {
		t.Errorf("second flush repeated %d summaries", len(again))
	}
}

func TestDeterministicIDs(t *testing.T) {
	mk := func() []tokenwatch.Alert {
		fpSeq = 0
		e := newEngine(t, testPolicy)
		return run(e,
			use(0, func(u *tokenwatch.TokenUse) { u.JWT.Exp = u.JWT.Iat + 8*3600 }),
			use(time.Minute, func(u *tokenwatch.TokenUse) { u.Service = "billing-api" }),
			use(2*time.Minute, func(u *tokenwatch.TokenUse) { u.JWT.ClientID = "ci-x" }))
	}
	a, b := mk(), mk()
	if len(a) != 3 || len(a) != len(b) {
		t.Fatalf("runs gave %d and %d findings", len(a), len(b))
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Summary != b[i].Summary || len(a[i].ID) != 32 {
			t.Errorf("finding %d differs between identical runs: %s/%s", i, a[i].ID, b[i].ID)
		}
	}
}

func TestSummariesCarryNoToken(t *testing.T) {
	// Summaries name clients, subjects, places and redacted previews only.
	e := newEngine(t, testPolicy)
	as := run(e, use(0, func(u *tokenwatch.TokenUse) { u.JWT.ClientID, u.Redacted = "ci-deployer", "ghp_ab…wxyz" }))
	for _, a := range as {
		if a.Severity == "" || a.Summary == "" || a.EventTime.IsZero() || len(a.Evidence) != 1 {
			t.Errorf("incomplete finding %+v", a)
		}
	}
}

func TestStateIsBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxState = 1000
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10_000 {
		u := use(time.Duration(i)*time.Second, func(u *tokenwatch.TokenUse) {
			u.JWT.Sub = fmt.Sprintf("user-%d", i)
			u.JWT.HasNonce, u.JWT.Aud, u.JWT.ClientID = true, []string{"spa"}, "spa"
			u.Fingerprint = tokenwatch.Fingerprint{byte(i), byte(i >> 8), 7}
		})
		e.Check(&u, nil)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.once) > cfg.MaxState || len(e.subjects) > cfg.MaxState {
		t.Errorf("state grew past the cap: once %d, subjects %d", len(e.once), len(e.subjects))
	}
}

func TestReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(p, []byte("defaults: {max_lifetime: 1h}\n"), 0o644)
	e, err := New(Config{File: p, MaxState: 1000})
	if err != nil {
		t.Fatal(err)
	}
	long := use(0, func(u *tokenwatch.TokenUse) { u.JWT.Exp = u.JWT.Iat + 2*3600 })
	if got := types(e.Check(&long, nil)); len(got) != 1 {
		t.Fatalf("before reload: %v", got)
	}
	os.WriteFile(p, []byte("defaults: {max_lifetime: 3h}\n"), 0o644)
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(p, later, later)
	e.Reload()
	long2 := use(48*time.Hour, func(u *tokenwatch.TokenUse) { u.JWT.Exp = u.JWT.Iat + 2*3600 })
	for _, a := range e.Check(&long2, nil) {
		if a.Update == 0 { // the previous day's summary (Update 1) is expected
			t.Errorf("after raising the limit: %s %s", a.Type, a.Summary)
		}
	}
	// A token checked under the old policy is checked again under the new one.
	os.WriteFile(p, []byte("defaults: {max_lifetime: 1h}\nservices: [{service: api-gateway, audiences: [other]}]\n"), 0o644)
	later = later.Add(2 * time.Second)
	os.Chtimes(p, later, later)
	seenBefore := use(49*time.Hour, func(u *tokenwatch.TokenUse) { u.JWT.Exp = u.JWT.Iat + 600 })
	e.Check(&seenBefore, nil)
	e.Reload()
	again := seenBefore
	again.Time = again.Time.Add(time.Minute)
	if got := types(e.Check(&again, nil)); strings.Join(got, ",") != TypeAudienceMismatch {
		t.Errorf("known token after a reload that restricts its audience: %v", got)
	}
	// A broken file keeps the loaded policy.
	os.WriteFile(p, []byte("defaults: {max_lifetime: [\n"), 0o644)
	later = later.Add(2 * time.Second)
	os.Chtimes(p, later, later)
	e.Reload()
	if e.pol.Load().def.MaxLifetime != time.Hour {
		t.Error("a broken policy file replaced the loaded policy")
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"defaults: {max_lifetime: 2h}", ""},
		{"bogus: 1", "field bogus not found"},
		{"clients: [{max_lifetime: 1h}]", "clients[0]: set issuer or client_id"},
		{"clients: [{client_id: 'a[', max_lifetime: 1h}]", "clients[0].client_id"},
		{"clients: [{client_id: ci, networks: [nope], workload: true}]", "clients[0].networks[0]"},
		{"clients: [{client_id: ci, networks: [10.0.0.0/8]}]", "add workload: true"},
		{"clients: [{client_id: ci, workload: true}]", "needs networks or asns"},
		{"services: [{service: x}]", "services[0].audiences"},
		{"windows: {dispensary: -1m}", "windows.dispensary"},
		{"dispensary_min_subjects: 1", "dispensary_min_subjects"},
		{"severities: {nope: high}", "severities.nope: unknown finding type"},
		{"severities: {token_dispensary: urgent}", "not a severity"},
	} {
		_, err := Parse([]byte(tc.in))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tc.in, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(testPolicy))
	f.Add([]byte("defaults: {max_lifetime: 1h}"))
	f.Add([]byte("clients: [{client_id: '*', allowed_scopes: ['[']}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pf, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses and validates must compile and match without panicking.
		c := compile(pf)
		c.client("https://idp.example.com", "web-portal").scopeAllowed("orders:read")
		c.service("billing-api")
	})
}

func BenchmarkCheck(b *testing.B) {
	e := newEngine(b, testPolicy)
	uses := make([]tokenwatch.TokenUse, 4096)
	for i := range uses {
		uses[i] = use(time.Duration(i)*time.Second, func(u *tokenwatch.TokenUse) {
			u.JWT.Sub = fmt.Sprintf("user-%d", i%500)
			u.Fingerprint = tokenwatch.Fingerprint{byte(i), byte(i >> 8), 9}
		})
	}
	var dst []tokenwatch.Alert
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst = e.Check(&uses[i&4095], dst[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "uses/s")
}

// TestCompiledGlobsMatchPathMatch: a compiled glob (literal, prefix or
// path.Match) agrees with path.Match on every pattern and name, except that
// "" and "*" match anything, as they always did in policies.
func TestCompiledGlobsMatchPathMatch(t *testing.T) {
	patterns := []string{"", "*", "web-portal", "web-*", "ci-*", "*-app", "a?c", "[a-c]*", `web\-*`, "https://*.api.example.com", "orders:*", "x*y*"}
	names := []string{"", "web-portal", "web-", "web-a/b", "ci-deployer", "ci", "mobile-app", "abc", "b-x", "https://eu.api.example.com", "https://a/b.api.example.com", "orders:read", "orders:", "xy", "x/y"}
	for _, p := range patterns {
		g := compileGlob(p)
		for _, n := range names {
			want, _ := path.Match(p, n)
			if p == "" || p == "*" {
				want = true // match anything, '/' too (as before compiling)
			}
			if got := g.match(n); got != want {
				t.Errorf("pattern %q (kind %d) on %q: %v, path.Match %v", p, g.kind, n, got, want)
			}
		}
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("web-*", "web-portal")
	f.Add("https://*.api.example.com", "https://eu.api.example.com")
	f.Add(`a\*`, "a*")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		want, err := path.Match(pattern, name)
		if err != nil || pattern == "" || pattern == "*" {
			return // File.Validate rejects bad patterns; "" and "*" match anything
		}
		if got := compileGlob(pattern).match(name); got != want {
			t.Errorf("pattern %q on %q: %v, path.Match %v", pattern, name, got, want)
		}
	})
}

// TestDispensaryOrderIndependent: three bursts of leaks from one endpoint, an
// hour and a half apart, read in event order, reversed and interleaved (as
// several partitions deliver them) raise one alert per burst every time.
func TestDispensaryOrderIndependent(t *testing.T) {
	var leaks []tokenwatch.TokenUse
	for burst := range 3 {
		for k := range 4 {
			at := time.Duration(burst)*97*time.Minute + time.Duration(k)*40*time.Second
			leaks = append(leaks, use(at, leak("legacy-auth", fmt.Sprintf("s%d-%d", burst, k))))
		}
	}
	reversed := slices.Clone(leaks)
	slices.Reverse(reversed)
	var interleaved []tokenwatch.TokenUse // the last burst first, the others in turns
	interleaved = append(interleaved, leaks[8:]...)
	for k := range 4 {
		interleaved = append(interleaved, leaks[k], leaks[4+k])
	}
	for name, order := range map[string][]tokenwatch.TokenUse{"in order": leaks, "reversed": reversed, "interleaved": interleaved} {
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, testPolicy)
			got := run(e, order...)
			if n := len(got); n != 3 {
				t.Fatalf("%d findings %v, want 3 token_dispensary", n, types(got))
			}
			for _, a := range got {
				if a.Type != TypeDispensary {
					t.Errorf("finding %s", a.Type)
				}
			}
		})
	}
}
