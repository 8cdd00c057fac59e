package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Label is one planted credential: its exact place in the corpus and its kind.
// Line is 1-based; Start/End are 0-based byte offsets within the line (the line
// excludes "\n" and a "\r" before it), End exclusive, value only — the same
// convention as tokenwatch scan's JSON output.
type Label struct {
	Line  int64  `json:"line"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	Kind  string `json:"kind"`
	// Alt lists other kinds a scanner may legitimately report for this value
	// (a ya29. token presented as "Bearer ya29…" is both a Google token and a
	// bearer token).
	Alt []string `json:"alt,omitempty"`
	// Ctx names the context template, for per-context miss reports.
	Ctx string `json:"ctx"`
}

// Negative is one planted look-alike that must not be reported. Findings that
// overlap a negative are reported by context in eval's false-positive list.
type Negative struct {
	Line  int64  `json:"line"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	Ctx   string `json:"ctx"`
}

// Meta describes a generated corpus.
type Meta struct {
	Seed      uint64         `json:"seed"`
	Mode      string         `json:"mode"`
	Lines     int64          `json:"lines"`
	Bytes     int64          `json:"bytes"`
	Labels    int            `json:"labels"`
	Negatives int            `json:"negatives"`
	ByKind    map[string]int `json:"by_kind"`
	Now       int64          `json:"now"`
}

// genConfig controls a generation run.
type genConfig struct {
	Mode  string // "quality" or "bench", recorded in meta.json
	Seed  uint64
	Lines int64 // stop after this many lines (0: use Bytes)
	Bytes int64 // stop once this many bytes are written (bench mode)
	// PosEvery/NegEvery: one credential line per PosEvery lines, one hard
	// negative per NegEvery lines, the rest clean.
	PosEvery int
	NegEvery int
	// LongLines is the number of multi-MB lines to plant (spread evenly).
	LongLines int
	// LongSize is the size of each long line in bytes.
	LongSize int
	// CRLFPercent of lines end in "\r\n".
	CRLFPercent int
}

// refNow is the corpus' fixed "now" (2026-01-01T00:00:00Z) so generated JWT
// timestamps are reproducible.
var refNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

// lineBuilder builds one line and remembers where the planted values are.
type lineBuilder struct {
	b    []byte
	pos  []Label
	neg  []Negative
	term string
}

func (l *lineBuilder) reset() {
	l.b = l.b[:0]
	l.pos = l.pos[:0]
	l.neg = l.neg[:0]
	l.term = "\n"
}

func (l *lineBuilder) s(parts ...string) *lineBuilder {
	for _, p := range parts {
		l.b = append(l.b, p...)
	}
	return l
}

// tok appends value and labels it as a credential of kind.
func (l *lineBuilder) tok(kind, ctx, value string, alt ...string) *lineBuilder {
	start := len(l.b)
	l.b = append(l.b, value...)
	l.pos = append(l.pos, Label{Start: start, End: len(l.b), Kind: kind, Ctx: ctx, Alt: alt})
	return l
}

// neg appends value and records it as a hard negative.
func (l *lineBuilder) negv(ctx, value string) *lineBuilder {
	start := len(l.b)
	l.b = append(l.b, value...)
	l.neg = append(l.neg, Negative{Start: start, End: len(l.b), Ctx: ctx})
	return l
}

// generator writes a labelled corpus.
type generator struct {
	r   *rand.Rand
	cfg genConfig
	l   lineBuilder
	ts  int64 // log timestamp, advances per line
}

func newGenerator(cfg genConfig) *generator {
	return &generator{r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), cfg: cfg, ts: refNow - 86400}
}

// run writes the corpus to w and labels to labels/negs (JSON lines).
func (g *generator) run(w io.Writer, labels, negs io.Writer) (Meta, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	lw := bufio.NewWriter(labels)
	nw := bufio.NewWriter(negs)
	meta := Meta{Seed: g.cfg.Seed, Mode: g.cfg.Mode, ByKind: map[string]int{}, Now: refNow}
	longAt := map[int64]bool{}
	if g.cfg.LongLines > 0 && g.cfg.Lines > 0 {
		step := g.cfg.Lines / int64(g.cfg.LongLines+1)
		for i := 1; i <= g.cfg.LongLines; i++ {
			longAt[step*int64(i)] = true
		}
	}
	var jb []byte
	for line := int64(1); ; line++ {
		if g.cfg.Lines > 0 && line > g.cfg.Lines {
			break
		}
		if g.cfg.Lines == 0 && meta.Bytes >= g.cfg.Bytes {
			break
		}
		g.ts += int64(g.r.IntN(3))
		g.l.reset()
		switch {
		case longAt[line]:
			g.longLine()
		case g.cfg.PosEvery > 0 && g.r.IntN(g.cfg.PosEvery) == 0:
			g.pickTemplate(positives).fn(g)
		case g.cfg.NegEvery > 0 && g.r.IntN(g.cfg.NegEvery) == 0:
			g.pickTemplate(negatives).fn(g)
		default:
			g.clean()
		}
		if g.cfg.CRLFPercent > 0 && g.r.IntN(100) < g.cfg.CRLFPercent {
			g.l.term = "\r\n"
		}
		if _, err := bw.Write(g.l.b); err != nil {
			return meta, fmt.Errorf("write corpus: %w", err)
		}
		bw.WriteString(g.l.term)
		meta.Bytes += int64(len(g.l.b) + len(g.l.term))
		meta.Lines = line
		for _, p := range g.l.pos {
			p.Line = line
			jb, _ = json.Marshal(p)
			lw.Write(jb)
			lw.WriteByte('\n')
			meta.Labels++
			meta.ByKind[p.Kind]++
		}
		for _, n := range g.l.neg {
			n.Line = line
			jb, _ = json.Marshal(n)
			nw.Write(jb)
			nw.WriteByte('\n')
			meta.Negatives++
		}
	}
	if err := bw.Flush(); err != nil {
		return meta, fmt.Errorf("write corpus: %w", err)
	}
	if err := lw.Flush(); err != nil {
		return meta, fmt.Errorf("write labels: %w", err)
	}
	if err := nw.Flush(); err != nil {
		return meta, fmt.Errorf("write negatives: %w", err)
	}
	return meta, nil
}

// ---- building blocks ----

func (g *generator) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *generator) isoTime() string {
	return time.Unix(g.ts, int64(g.r.IntN(1e9))).UTC().Format("2006-01-02T15:04:05.000Z")
}

func (g *generator) clfTime() string {
	return time.Unix(g.ts, 0).UTC().Format("02/Jan/2006:15:04:05 -0700")
}

func (g *generator) ip() string {
	return fmt.Sprintf("%d.%d.%d.%d", 1+g.r.IntN(222), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

func (g *generator) ua() string {
	return g.pick(
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"curl/8.7.1", "okhttp/4.12.0", "python-requests/2.32.3", "Go-http-client/2.0", "kube-probe/1.30",
	)
}

func (g *generator) path() string {
	return g.pick("/api/v1/orders", "/api/v2/users/me", "/healthz", "/static/app.js", "/v1/payments/intent",
		"/graphql", "/login", "/oauth/authorize", "/assets/logo.svg", "/api/v1/search")
}

func (g *generator) svc() string {
	return g.pick("checkout", "auth-gateway", "orders-api", "billing", "frontend", "inventory")
}

// jwtTok returns a JWT of a realistic algorithm mix. Variants (padding, alg
// none) are chosen by the positive templates that test them explicitly.
func (g *generator) jwtTok() string {
	return jwt(g.r, refNow, jwtOpts{alg: g.pick("RS256", "RS256", "RS256", "HS256", "ES256", "PS512")})
}

// bearerValue returns a value to put after "Bearer ": a JWT (kind jwt) or an
// opaque token (kind bearer).
func (g *generator) bearerValue() (kind, value string) {
	if g.r.IntN(2) == 0 {
		return "jwt", g.jwtTok()
	}
	return "bearer", opaqueToken(g.r)
}

// oauthValue returns a value for an OAuth parameter or field: a JWT or opaque.
func (g *generator) oauthValue() (kind, value string) {
	if g.r.IntN(2) == 0 {
		return "jwt", g.jwtTok()
	}
	return "oauth", opaqueToken(g.r)
}

type template struct {
	name string
	fn   func(g *generator)
}

// rareTemplates have weight 1 instead of the norm of 3 (relative frequency).
var rareTemplates = map[string]bool{"aws-example": true, "jwt-spaced-header": true}

// pickTemplate chooses a template with probability proportional to its weight.
func (g *generator) pickTemplate(ts []template) template {
	total := 0
	for _, t := range ts {
		total += t.w()
	}
	n := g.r.IntN(total)
	for _, t := range ts {
		if n -= t.w(); n < 0 {
			return t
		}
	}
	panic("BUG: pickTemplate fell off the end")
}

func (t template) w() int {
	if rareTemplates[t.name] {
		return 1
	}
	return 3
}

// ---- positive contexts ----

var positives = []template{
	{"query-amp", func(g *generator) {
		k, v := g.oauthValue()
		p := g.pick("access_token", "id_token", "token")
		g.l.s("GET /oauth/callback?", p, "=").tok(k, "query-amp", v).s("&token_type=Bearer&expires_in=3600&state=", randString(g.r, alnum, 12), " HTTP/1.1")
	}},
	{"jwt-delims", func(g *generator) {
		v := g.jwtTok()
		switch g.r.IntN(8) {
		case 0:
			g.l.s(g.isoTime(), " DEBUG tokens=[").tok("jwt", "jwt-delims", v).s("] count=1")
		case 1:
			g.l.s(g.isoTime(), " WARN verify(").tok("jwt", "jwt-delims", v).s(") failed: signature mismatch")
		case 2:
			g.l.s(g.isoTime(), " INFO ctx={token:").tok("jwt", "jwt-delims", v).s("} user=bob")
		case 3:
			g.l.s("req=", uuid(g.r), "|").tok("jwt", "jwt-delims", v).s("|200|", strconv.Itoa(g.r.IntN(900)), "ms")
		case 4:
			g.l.s(`{"level":"debug","session":"`).tok("jwt", "jwt-delims", v).s(`","ok":true}`)
		case 5:
			g.l.s("INFO cached credential '").tok("jwt", "jwt-delims", v).s("' for ", g.svc())
		case 6:
			g.l.s("tokens: ").tok("jwt", "jwt-delims", v).s(", ").tok("jwt", "jwt-delims", g.jwtTok()).s(", done")
		default:
			g.l.s("id_token=").tok("jwt", "jwt-delims", v).s(";")
		}
	}},
	{"urlenc-dot", func(g *generator) {
		v := strings.ReplaceAll(g.jwtTok(), ".", g.pick("%2E", "%2e"))
		g.l.s(g.ip(), " - - [", g.clfTime(), `] "GET /login?next=https%3A%2F%2Fapp.example.com%2Fcb%3Fid_token%3D`).tok("jwt", "urlenc-dot", v).s(`%26state%3Dxyz HTTP/1.1" 302 0 "-" "`, g.ua(), `"`)
	}},
	{"urlenc-bearer", func(g *generator) {
		k, v := g.bearerValue()
		if g.r.IntN(2) == 0 {
			g.l.s("GET /proxy?h=Authorization%3A%20Bearer%20").tok(k, "urlenc-bearer", v).s("&u=", g.path(), " 502")
		} else {
			g.l.s("forwarding auth=Bearer%20").tok(k, "urlenc-bearer", v).s(" to upstream ", g.svc())
		}
	}},
	{"json-escaped-slash", func(g *generator) {
		k, v := g.oauthValue()
		g.l.s(`{"time":"`, g.isoTime(), `","level":"info","msg":"redirect","location":"https:\/\/app.example.com\/cb#access_token=`).tok(k, "json-escaped-slash", v).s(`&token_type=Bearer&state=af0ifjsldkj"}`)
	}},
	{"json-escaped-u002e", func(g *generator) {
		v := strings.ReplaceAll(g.jwtTok(), ".", `\u002e`)
		g.l.s(`{"ts":`, strconv.FormatInt(g.ts, 10), `,"event":"login","payload":"{\"id_token\":\"`).tok("jwt", "json-escaped-u002e", v).s(`\"}"}`)
	}},
	{"json-escaped-slash-opaque", func(g *generator) {
		v := randString(g.r, alnum, 20) + `\/` + randString(g.r, alnum+"+", 20) + `\/` + randString(g.r, alnum, 6)
		g.l.s(`{"headers":{"Authorization":"Bearer `).tok("bearer", "json-escaped-slash-opaque", v).s(`"},"status":401}`)
	}},
	{"java-trace", func(g *generator) {
		k, v := g.bearerValue()
		switch g.r.IntN(3) {
		case 0:
			g.l.s("Caused by: org.springframework.web.client.HttpClientErrorException$Unauthorized: 401 Unauthorized on GET request for \"https://api.example.com/v1/me\": [Authorization:\"Bearer ").tok(k, "java-trace", v).s("\"]")
		case 1:
			j := g.jwtTok()
			g.l.s("io.jsonwebtoken.ExpiredJwtException: JWT expired at 2025-12-31T23:59:59Z. Current time: 2026-01-01T00:00:01Z, token=").tok("jwt", "java-trace", j)
		default:
			g.l.s(g.isoTime(), " DEBUG [http-nio-8080-exec-3] o.a.c.c.C.[Tomcat].[localhost] : Request headers: {host=api, authorization=Bearer ").tok(k, "java-trace", v).s(", accept=*/*}")
		}
	}},
	{"python-trace", func(g *generator) {
		k, v := g.oauthValue()
		if g.r.IntN(2) == 0 {
			g.l.s("requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: https://api.example.com/v1/me?access_token=").tok(k, "python-trace", v)
		} else {
			bk, bv := g.bearerValue()
			g.l.s("DEBUG:urllib3.connectionpool:https://api.example.com:443 \"GET /v1/me HTTP/1.1\" 401 None headers={'Authorization': 'Bearer ").tok(bk, "python-trace", bv).s("', 'Accept': '*/*'}")
		}
	}},
	{"go-dump", func(g *generator) {
		k, v := g.bearerValue()
		switch g.r.IntN(3) {
		case 0:
			g.l.s(`http.Header{"Accept":[]string{"*/*"}, "Authorization":[]string{"Bearer `).tok(k, "go-dump", v).s(`"}}`)
		case 1:
			g.l.s(`&http.Request{Method:"GET", URL:(*url.URL)(0xc000120000), Header:http.Header{"Authorization":[]string{"Bearer `).tok(k, "go-dump", v).s(`"}}, ContentLength:0}`)
		default:
			ok, ov := g.oauthValue()
			g.l.s(`panic: oauth2: cannot fetch token: 400 Bad Request Response: {"error":"invalid_grant"} refresh_token="`).tok(ok, "go-dump", ov).s(`"`)
		}
	}},
	{"curl", func(g *generator) {
		k, v := g.bearerValue()
		q := g.pick(`'`, `"`)
		g.l.s("+ curl -sS -X POST -H ", q, "Authorization: Bearer ").tok(k, "curl", v).s(q, " -H ", q, "Content-Type: application/json", q, " https://api.example.com", g.path())
	}},
	{"curl-github", func(g *generator) {
		v := githubToken(g.r, g.pick("ghp_", "gho_", "ghu_", "ghs_", "ghr_"))
		g.l.s(`curl -H "Authorization: token `).tok("github", "curl-github", v, "bearer").s(`" https://api.github.com/user`)
	}},
	{"k8s", func(g *generator) {
		k, v := g.bearerValue()
		if g.r.IntN(2) == 0 {
			g.l.s(g.isoTime(), " stderr F level=debug msg=\"calling upstream\" authorization=\"Bearer ").tok(k, "k8s", v).s("\" pod=", g.svc(), "-7d9f8c6b5-x2x9k")
		} else {
			g.l.s(`{"log":"`, g.isoTime(), ` upstream request Authorization: Bearer `).tok(k, "k8s", v).s(`\n","stream":"stdout","time":"`, g.isoTime(), `"}`)
		}
	}},
	{"ci", func(g *generator) {
		switch g.r.IntN(4) {
		case 0:
			g.l.s(g.isoTime(), "   GITHUB_TOKEN: ").tok("github", "ci", githubToken(g.r, "ghs_"))
		case 1:
			g.l.s(`$ echo "//registry.npmjs.org/:_authToken=`).tok("npm", "ci", npmToken(g.r)).s(`" > .npmrc`)
		case 2:
			g.l.s("$ git clone https://oauth2:").tok("gitlab", "ci", gitlabToken(g.r)).s("@gitlab.example.com/acme/app.git")
		default:
			g.l.s("[Pipeline] sh + export GH_TOKEN=").tok("github", "ci", githubFineGrained(g.r))
		}
	}},
	{"apache", func(g *generator) {
		k, v := g.oauthValue()
		g.l.s(g.ip(), ` - - [`, g.clfTime(), `] "GET /api/v1/me?access_token=`).tok(k, "apache", v).s(` HTTP/1.1" 200 512 "-" "`, g.ua(), `"`)
	}},
	{"nginx", func(g *generator) {
		k, v := g.oauthValue()
		g.l.s(g.ip(), ` - alice [`, g.clfTime(), `] "POST /v1/token?client_id=web&refresh_token=`).tok(k, "nginx", v).s(` HTTP/2.0" 200 1024 "https://app.example.com/" "`, g.ua(), `" rt=0.012 uct="0.000"`)
	}},
	{"iis", func(g *generator) {
		k, v := g.oauthValue()
		g.l.s(time.Unix(g.ts, 0).UTC().Format("2006-01-02 15:04:05"), " 10.0.0.4 GET /default.aspx access_token=").tok(k, "iis", v).s(" 443 - ", g.ip(), " Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) - 200 0 0 15")
	}},
	{"envoy", func(g *generator) {
		k, v := g.bearerValue()
		if g.r.IntN(2) == 0 {
			g.l.s(`[`, g.isoTime(), `] "GET /v1/items?token=`).tok(k, "envoy", v).s(` HTTP/1.1" 200 - 0 532 3 2 "`, g.ip(), `" "`, g.ua(), `" "`, uuid(g.r), `" "api.internal" "10.1.2.3:8080"`)
		} else {
			g.l.s(`{"start_time":"`, g.isoTime(), `","method":"GET","path":"/v1/items","authorization":"Bearer `).tok(k, "envoy", v).s(`","response_code":200,"upstream_host":"10.1.2.3:8080"}`)
		}
	}},
	{"cookie", func(g *generator) {
		v := g.jwtTok()
		if g.r.IntN(2) == 0 {
			g.l.s("Cookie: theme=dark; access_token=").tok("jwt", "cookie", v).s("; _ga=GA1.2.", strconv.Itoa(g.r.IntN(1e9)))
		} else {
			k, ov := g.oauthValue()
			g.l.s("< Set-Cookie: refresh_token=").tok(k, "cookie", ov).s("; Path=/; Secure; HttpOnly; SameSite=Lax")
		}
	}},
	{"form", func(g *generator) {
		k, v := g.oauthValue()
		g.l.s(g.isoTime(), " DEBUG POST /oauth/token body=grant_type=refresh_token&refresh_token=").tok(k, "form", v).s("&client_id=web-app&client_secret=").tok("oauth", "form", randString(g.r, alnum+"-_", 40))
	}},
	{"json-fields", func(g *generator) {
		g.l.s(`{"access_token":"`).tok("jwt", "json-fields", g.jwtTok()).s(`","token_type":"Bearer","expires_in":3600,"refresh_token":"`).tok("oauth", "json-fields", opaqueToken(g.r)).s(`","scope":"openid"}`)
	}},
	{"json-id-token", func(g *generator) {
		g.l.s(`{"level":"debug","msg":"token response","id_token": "`).tok("jwt", "json-id-token", g.jwtTok()).s(`"}`)
	}},
	{"basic", func(g *generator) {
		g.l.s(g.pick("Authorization", "authorization", "AUTHORIZATION"), ": ", g.pick("Basic", "basic", "BASIC"), " ").tok("basic", "basic", basicCredential(g.r))
	}},
	{"bearer-case", func(g *generator) {
		k, v := g.bearerValue()
		h := g.pick("Authorization", "authorization", "AUTHORIZATION")
		s := g.pick("Bearer", "bearer", "BEARER", "DPoP", "dpop")
		g.l.s(g.isoTime(), " ", h, ": ", s, " ").tok(k, "bearer-case", v)
	}},
	{"token-scheme", func(g *generator) {
		g.l.s("> Authorization: token ").tok("bearer", "token-scheme", opaqueToken(g.r))
	}},
	{"prefixed", func(g *generator) {
		switch g.r.IntN(8) {
		case 0:
			g.l.s("config loaded: {github_token: ").tok("github", "prefixed", githubToken(g.r, "ghp_")).s(", org: acme}")
		case 1:
			g.l.s("slack: chat.postMessage failed for token ").tok("slack", "prefixed", slackToken(g.r)).s(": invalid_auth")
		case 2:
			g.l.s("stripe.api_key = '").tok("stripe", "prefixed", stripeToken(g.r)).s("'")
		case 3:
			g.l.s(g.isoTime(), " GET https://www.googleapis.com/drive/v3/files Authorization: Bearer ").tok("google", "prefixed", googleToken(g.r), "bearer", "jwt")
		case 4:
			g.l.s("NPM_TOKEN=").tok("npm", "prefixed", npmToken(g.r))
		case 5:
			g.l.s(`{"gitlab_token":"`).tok("gitlab", "prefixed", gitlabToken(g.r)).s(`"}`)
		case 6:
			g.l.s("env: GITHUB_TOKEN=").tok("github", "prefixed", githubToken(g.r, "gho_")).s(" HOME=/root")
		default:
			g.l.s(`"oauth_token": "`).tok("github", "prefixed", githubToken(g.r, "ghu_")).s(`",`)
		}
	}},
	{"aws", func(g *generator) {
		if g.r.IntN(2) == 0 {
			g.l.s("AWS_ACCESS_KEY_ID=").tok("aws", "aws", awsKeyID(g.r)).s(" AWS_SECRET_ACCESS_KEY=").tok("aws", "aws", awsSecret(g.r)).s(" aws s3 ls")
		} else {
			g.l.s(`{"Credentials":{"AccessKeyId":"`).tok("aws", "aws", awsKeyID(g.r)).s(`","SecretAccessKey":"`).tok("aws", "aws", awsSecret(g.r)).s(`","Expiration":"2026-01-01T01:00:00Z"}}`)
		}
	}},
	{"oauth-code", func(g *generator) {
		g.l.s(g.ip(), ` - - [`, g.clfTime(), `] "GET /oauth/callback?code=`).tok("oauth", "oauth-code", randString(g.r, alnum+"-_", 32+g.r.IntN(12))).s(`&state=`, randString(g.r, alnum, 16), ` HTTP/1.1" 302 0`)
	}},
	{"jwe", func(g *generator) {
		if g.r.IntN(2) == 0 {
			g.l.s("id_token=").tok("jwe", "jwe", jwe(g.r)).s("&session_state=", uuid(g.r))
		} else {
			g.l.s("Authorization: Bearer ").tok("jwe", "jwe", jwe(g.r))
		}
	}},
	{"alg-none", func(g *generator) {
		v := jwt(g.r, refNow, jwtOpts{alg: "none"})
		g.l.s(g.isoTime(), " WARN accepted unsigned token ").tok("jwt", "alg-none", v).s(g.pick(" from ", "&from=", ",src=", "\tfrom "), g.ip())
	}},
	{"jwt-padded", func(g *generator) {
		v := jwt(g.r, refNow, jwtOpts{alg: "HS256", padded: true})
		g.l.s("legacy-auth token=").tok("jwt", "jwt-padded", v).s(" user=", g.pick("bob", "carol"))
	}},
	{"proxy-authorization", func(g *generator) {
		k, v := g.bearerValue()
		g.l.s(g.isoTime(), " squid: CONNECT api.example.com:443 Proxy-Authorization: Bearer ").tok(k, "proxy-authorization", v).s(" via ", g.ip())
	}},
	{"x-auth-header", func(g *generator) {
		h := g.pick("X-Auth-Token", "x-auth-token", "X-Api-Token", "X-Amz-Security-Token")
		g.l.s(`> `, h, `: `).tok("oauth", "x-auth-header", randString(g.r, alnum+"/+", 40+g.r.IntN(40)))
	}},
	{"bearer-plus", func(g *generator) {
		k, v := g.bearerValue()
		g.l.s("POST /relay body=target=", g.svc(), "&authorization=Bearer+").tok(k, "bearer-plus", v).s("&ts=", strconv.FormatInt(g.ts, 10))
	}},
	{"json-spaced", func(g *generator) {
		k, v := g.oauthValue()
		g.l.s(`{ "token_type" : "Bearer", "access_token" : "`).tok(k, "json-spaced", v).s(`", "expires_in" : 3599 }`)
	}},
	{"fragment", func(g *generator) {
		g.l.s(`Navigated to https://app.example.com/callback#state=`, randString(g.r, alnum, 10), `&id_token=`).tok("jwt", "fragment", g.jwtTok()).s(`&token_type=Bearer`)
	}},
	{"jwt-spaced-header", func(g *generator) {
		// Header JSON with spaces ("{ \"alg\": …"): base64url starts "eyAi",
		// not "eyJ"; still a JWT (RFC 7515 allows any JSON whitespace).
		v := jwt(g.r, refNow, jwtOpts{alg: "RS256", spaced: true})
		g.l.s(g.isoTime(), " DEBUG python-jose issued ").tok("jwt", "jwt-spaced-header", v)
	}},
	{"json-nested-escaped", func(g *generator) {
		k, v := g.bearerValue()
		g.l.s(`{"level":"debug","msg":"outgoing request {\"headers\":{\"Authorization\":\"Bearer `).tok(k, "json-nested-escaped", v).s(`\"}}","svc":"`, g.svc(), `"}`)
	}},
	{"bare-line", func(g *generator) {
		g.l.tok("jwt", "bare-line", g.jwtTok())
	}},
	{"xml", func(g *generator) {
		if g.r.IntN(2) == 0 {
			g.l.s(`<wsse:BinarySecurityToken ValueType="urn:ietf:params:oauth:token-type:jwt">`).tok("jwt", "xml", g.jwtTok()).s(`</wsse:BinarySecurityToken>`)
		} else {
			g.l.s(`<input type="hidden" name="id_token" value="`).tok("jwt", "xml", g.jwtTok()).s(`"/>`)
		}
	}},
	{"syslog", func(g *generator) {
		k, v := g.bearerValue()
		g.l.s("<134>", time.Unix(g.ts, 0).UTC().Format("Jan _2 15:04:05"), " web-01 nginx[", strconv.Itoa(1000+g.r.IntN(9000)), "]: upstream auth header=\"Bearer ").tok(k, "syslog", v).s("\"")
	}},
	{"yaml", func(g *generator) {
		k, v := g.oauthValue()
		g.l.s("    ", g.pick("access_token", "refresh_token", "id_token"), ": ").tok(k, "yaml", v)
	}},
	{"java-tostring", func(g *generator) {
		g.l.s(g.isoTime(), " DEBUG TokenResponse{accessToken='").tok("jwt", "java-tostring", g.jwtTok()).s("', refreshToken='").tok("oauth", "java-tostring", opaqueToken(g.r)).s("', expiresIn=3600}")
	}},
	{"graphql", func(g *generator) {
		g.l.s(`{"operationName":"Login","variables":{"token":"`).tok("jwt", "graphql", g.jwtTok()).s(`"},"query":"mutation Login($token: String!) { login(token: $token) { id } }"}`)
	}},
	{"jwt-big", func(g *generator) {
		// An ID token with hundreds of group claims: ~6 KB.
		groups := make([]string, 180)
		for i := range groups {
			groups[i] = `"` + uuid(g.r) + `"`
		}
		claims := `{"iss":"https://sts.windows.net/8f1a2b3c-0d4e-4f50-9a61-72b8c9d0e1f2/","sub":"` + uuid(g.r) + `","exp":` + strconv.FormatInt(refNow+3600, 10) + `,"groups":[` + strings.Join(groups, ",") + `]}`
		v := b64seg([]byte(`{"alg":"RS256","typ":"JWT"}`), false) + "." + b64seg([]byte(claims), false) + "." + b64seg(randBytes(g.r, 256), false)
		g.l.s("Authorization: Bearer ").tok("jwt", "jwt-big", v)
	}},
	{"ansi", func(g *generator) {
		k, v := g.bearerValue()
		// logrus TextFormatter with colours: the level and each key are coloured.
		g.l.s("\x1b[37mDEBU\x1b[0m[0042] calling upstream                              \x1b[37mauthorization\x1b[0m=\"Bearer ").tok(k, "ansi", v).s("\" \x1b[37mservice\x1b[0m=", g.svc())
	}},
	{"tsv", func(g *generator) {
		g.l.s(time.Unix(g.ts, 0).UTC().Format(time.RFC3339), "\t", g.ip(), "\tGET\t/api\t").tok("jwt", "tsv", g.jwtTok()).s("\t200")
	}},
	{"cli-curl-user", func(g *generator) {
		v := cliUser(g.r) + ":" + cliPassword(g.r)
		switch g.r.IntN(6) {
		case 0:
			g.l.s("+ curl -sS -u ").tok("cli_password", "cli-curl-user", v).s(" https://ci.example.com", g.path())
		case 1:
			g.l.s("$ curl --user '").tok("cli_password", "cli-curl-user", v).s("' -X POST -H 'Content-Type: application/json' https://api.example.com", g.path())
		case 2:
			g.l.s(g.isoTime(), ` stdout F + curl -fsSL -u "`).tok("cli_password", "cli-curl-user", v).s(`" https://nexus.example.com/repository/raw/app.tgz -o app.tgz`)
		case 3:
			g.l.s(`{"log":"+ curl -u \"`).tok("cli_password", "cli-curl-user", v).s(`\" https://registry.example.com/v2/_catalog\n","stream":"stderr","time":"`, g.isoTime(), `"}`)
		case 4:
			g.l.s("  ", strconv.Itoa(100+g.r.IntN(900)), "  curl --user=").tok("cli_password", "cli-curl-user", v).s(" https://jenkins.example.com/crumbIssuer/api/json")
		default:
			g.l.s("DEBUG exec: /usr/bin/curl -s -u").tok("cli_password", "cli-curl-user", v).s(" https://es.example.com:9200/_cluster/health | jq .status")
		}
	}},
	{"cli-wget-password", func(g *generator) {
		u, pw := cliUser(g.r), cliPassword(g.r)
		if g.r.IntN(2) == 0 {
			g.l.s("+ wget -q --user=", u, " --password=").tok("cli_password", "cli-wget-password", pw).s(" https://artifacts.example.com/build.zip")
		} else {
			g.l.s("$ wget --http-user ", u, " --http-password '").tok("cli_password", "cli-wget-password", pw).s("' -O - https://x.example.com/f | tar xz")
		}
	}},
	{"url-userinfo", func(g *generator) {
		pw := urlPassword(g.r)
		switch g.r.IntN(7) {
		case 0:
			g.l.s(g.isoTime(), " INFO connecting to database url=postgres://", g.pick("app", "orders_rw", "postgres"), ":").tok("url_password", "url-userinfo", pw).s("@db-primary.internal:5432/orders?sslmode=require")
		case 1:
			g.l.s(`{"level":"info","msg":"config loaded","DATABASE_URL":"mongodb+srv://svc:`).tok("url_password", "url-userinfo", pw).s(`@cluster0.ab12c.mongodb.net/app?retryWrites=true","service":"`, g.svc(), `"}`)
		case 2:
			g.l.s(g.isoTime(), " WARN redis reconnect redis://:").tok("url_password", "url-userinfo", pw).s("@cache-", strconv.Itoa(g.r.IntN(9)), ":6379/0 attempt=", strconv.Itoa(1+g.r.IntN(5)))
		case 3:
			g.l.s("celery worker broker=amqp://worker:").tok("url_password", "url-userinfo", pw).s("@rabbitmq:5672/%2F concurrency=4")
		case 4:
			g.l.s("+ git clone https://ci-bot:").tok("url_password", "url-userinfo", pw).s("@git.example.com/platform/", g.svc(), ".git")
		case 5:
			g.l.s(`DATABASE_URL='mysql://root:`).tok("url_password", "url-userinfo", pw).s(`@127.0.0.1:3306/app' SMTP_URL="smtp://mailer:`).tok("url_password", "url-userinfo", urlPassword(g.r)).s(`@smtp.example.com:587"`)
		default:
			// a password with reserved bytes, percent-encoded as URLs require
			enc := randString(g.r, alnum, 5) + g.pick("%40", "%3A", "%2F", "%23") + randString(g.r, alnum, 6)
			g.l.s(g.isoTime(), " DEBUG dsn=postgres://report:").tok("url_password", "url-userinfo", enc).s("@analytics-db/report")
		}
	}},
	{"client-secret", func(g *generator) {
		g.l.s(`{"client_id":"web-app","client_secret":"`).tok("oauth", "client-secret", randString(g.r, alnum+"-_.~", 40)).s(`","grant_type":"client_credentials"}`)
	}},
}

// ---- hard negatives ----

var negatives = []template{
	{"uuid", func(g *generator) {
		g.l.s(g.isoTime(), " INFO request_id=").negv("uuid", uuid(g.r)).s(" session=").negv("uuid", uuid(g.r)).s(" trace_id=").negv("hex", randString(g.r, hexLower, 32))
	}},
	{"hashes", func(g *generator) {
		g.l.s("commit ").negv("hash", randString(g.r, hexLower, 40)).s(" sha256=").negv("hash", randString(g.r, hexLower, 64)).s(` etag="`).negv("hash", randString(g.r, hexLower, 32)).s(`"`)
	}},
	{"base64-blob", func(g *generator) {
		blob := base64.StdEncoding.EncodeToString(randBytes(g.r, 90+g.r.IntN(300)))
		g.l.s(`{"avatar":"data:image/png;base64,`).negv("base64", blob).s(`","cert":"MIIC`).negv("base64", randString(g.r, b64std, 120)).s(`"}`)
	}},
	{"truncated-jwt", func(g *generator) {
		j := g.jwtTok()
		parts := strings.SplitN(j, ".", 3)
		h := parts[0][:5+g.r.IntN(len(parts[0])-8)]
		if len(h)%4 == 1 { // keep it a base64url-shaped string that still fails to decode to JSON
			h = h[:len(h)-1]
		}
		bad := h + "." + parts[1][:10+g.r.IntN(20)] + "." + parts[2][:g.r.IntN(20)]
		g.l.s(g.isoTime(), " WARN malformed token ").negv("truncated-jwt", bad).s(" (truncated)")
	}},
	{"jwt-header-only", func(g *generator) {
		g.l.s("jwt header=").negv("jwt-header-only", "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9").s(" payload=").negv("base64-json", base64.RawURLEncoding.EncodeToString([]byte(`{"user":"bob","n":`+strconv.Itoa(g.r.IntN(1000))+`}`)))
	}},
	{"bearer-placeholder", func(g *generator) {
		p := g.pick("<token>", "${TOKEN}", "xxx", "REDACTED", "***", "$ACCESS_TOKEN", "{{token}}", "<your-token-here>", "[REDACTED]", "null", "undefined", "XXXXXXXXXXXXXXXX", "****************", "${{ secrets.GITHUB_TOKEN }}", "%s", "<access_token>", "YOUR_TOKEN", "[FILTERED]", "<redacted>")
		g.l.s(g.pick("Authorization: Bearer ", "curl -H 'Authorization: Bearer ", "authorization=Bearer ", `"Authorization": "Bearer `)).negv("placeholder", p).s(g.pick("", "'", `"`))
	}},
	{"placeholder-params", func(g *generator) {
		g.l.s("GET /cb?access_token=").negv("placeholder", g.pick("<token>", "REDACTED", "***", "${TOKEN}", "[REDACTED]")).s("&token=").negv("placeholder", g.pick("", "null", "xxx", "[FILTERED]")).s(" 200")
	}},
	{"redacted-marker", func(g *generator) {
		fp := randString(g.r, hexLower, 8)
		m := "[REDACTED:" + g.pick("jwt", "bearer", "oauth_access_token", "github_pat", "basic") + ":" + fp + "]"
		g.l.s(g.pick("Authorization: Bearer ", "access_token=", `{"id_token":"`, "Cookie: session=", "token ")).negv("redacted-marker", m).s(g.pick("", "&x=1", `"}`))
	}},
	{"github-bad-checksum", func(g *generator) {
		g.l.s("token: ").negv("github-bad-checksum", githubTokenBadChecksum(g.r, g.pick("ghp_", "gho_", "ghs_"))).s(" npm: ").negv("npm-bad-checksum", githubTokenBadChecksum(g.r, "npm_"))
	}},
	{"oauth-words", func(g *generator) {
		g.l.s(g.pick(
			`{"token_type":"Bearer","expires_in":3600,"scope":"openid"}`,
			"grant_type=refresh_token&client_id=web-app&response_type=code",
			"WARN Authorization header missing: expected Bearer token",
			"ERROR access_token expired; refreshing (attempt 2)",
			"HTTP/1.1 401 Unauthorized WWW-Authenticate: Bearer realm=\"api\", error=\"invalid_token\"",
			"exit code=1 status code=404 error_code=E_TOKEN_EXPIRED",
			"secretName: api-token-7f9c2 tokenSecretRef: github-app-token",
			"DEBUG token refresh scheduled in 300s for client web-app",
			"INFO Bearer token validated for sub=1234 aud=api",
		))
	}},
	{"sk-test", func(g *generator) {
		g.l.s("stripe test mode key sk_test_").negv("stripe-test-fragment", randString(g.r, alnum, 8)).s(" (truncated)")
	}},
	{"pagination-csrf", func(g *generator) {
		g.l.s(g.pick(`{"nextPageToken":"`, `{"next_page_token":"`, `{"csrf_token":"`, `{"pageToken":"`, `{"continuationToken":"`)).negv("page-or-csrf-token", randString(g.r, b64url, 32+g.r.IntN(40))).s(`","items":[]}`)
	}},
	{"bearer-prose", func(g *generator) {
		g.l.s(g.pick(
			"failed to validate Bearer token: signature invalid",
			"ERROR Bearer token expired at 2025-12-31T23:59:59Z for client web-app",
			"Authorization: Bearer\r",
			"expected header 'Authorization: Bearer <jwt>' but got none",
			"mounted /var/run/secrets/kubernetes.io/serviceaccount/token read-only",
			"class=TokenRefreshScheduler method=refreshAccessToken status=ok",
			"token refresh failed: invalid_grant (refresh token revoked)",
			"access_token=; refresh_token=; id_token= (cleared on logout)",
		))
	}},
	{"non-oauth-code", func(g *generator) {
		g.l.s(g.ip(), ` - - [`, g.clfTime(), `] "GET `, g.pick("/verify?code=", "/promo?code=", "/country?code=", "/errors?code="), g.pick(strconv.Itoa(100000+g.r.IntN(900000)), "SUMMER2024", "DE", "E_TIMEOUT"), ` HTTP/1.1" 200 0`)
	}},
	{"session-path", func(g *generator) {
		g.l.s(`"GET /api/sessions/`).negv("hex-path", randString(g.r, hexLower, 64)).s(`/events HTTP/1.1" 200 "docker.io/library/nginx@sha256:`).negv("hash", randString(g.r, hexLower, 64)).s(`"`)
	}},
	{"cli-not-credentials", func(g *generator) {
		// -u options of other commands, and curl/wget without a literal password.
		switch g.r.IntN(8) {
		case 0:
			g.l.s("+ sudo -u ", g.pick("root", "postgres", "www-data"), " systemctl restart ", g.svc())
		case 1:
			g.l.s("$ docker run --rm -u ").negv("uid-gid", strconv.Itoa(1000+g.r.IntN(100))+":"+strconv.Itoa(1000+g.r.IntN(100))).s(" -v $PWD:/src golang:1.26 go build ./...")
		case 2:
			g.l.s("+ curl -sS -u ").negv("placeholder", g.pick("$USER:$PASS", "${CI_USER}:${CI_TOKEN}", "admin:<password>", "user:xxx", "deploy:REDACTED", "user:***")).s(" https://ci.example.com/api/json")
		case 3:
			g.l.s(`+ curl -u "`).negv("placeholder", g.pick("${NEXUS_USER}:${NEXUS_PASS}", "$U:$P")).s(`" https://nexus.example.com`)
		case 4:
			g.l.s("+ curl -fsSL -u ", g.pick("deploy", "admin"), " https://x.example.com # prompts for the password")
		case 5:
			g.l.s("+ wget --user=", g.pick("deploy", "admin"), " --password=").negv("placeholder", g.pick("$WGET_PASSWORD", "${PASS}", "[REDACTED:cli_password:"+randString(g.r, hexLower, 8)+"]")).s(" https://x.example.com/f")
		case 6:
			g.l.s("ps -u ", g.pick("postgres", "nginx"), " -o pid,cmd; top -b -n1 -u ", g.pick("root", "app"), "; git log -u -1")
		default:
			g.l.s("+ pip install -U pip && curl -u ").negv("redacted-marker", "[REDACTED:cli_password:"+randString(g.r, hexLower, 8)+"]").s(" https://x.example.com")
		}
	}},
	{"url-not-userinfo", func(g *generator) {
		// URLs with an '@' or a ':' that are no password, and DSN templates.
		switch g.r.IntN(8) {
		case 0:
			g.l.s(g.ip(), ` - - "GET /u/`).negv("email-path", "bob@example.com").s(` HTTP/1.1" 200 512 "https://`, g.pick("www.example.com", "example.com:8443"), `/profile/alice@example.com" "Mozilla/5.0"`)
		case 1:
			g.l.s("+ git clone ").negv("no-password", g.pick("git@github.com:org/repo.git", "ssh://git@github.com/org/repo.git", "https://ci-bot@git.example.com/org/repo.git"))
		case 2:
			g.l.s("config: DATABASE_URL=postgres://app:").negv("placeholder", g.pick("${DB_PASSWORD}", "$DB_PASS", "<password>", "xxxx", "****", "REDACTED", "password", "changeme")).s("@db:5432/app")
		case 3:
			g.l.s(g.isoTime(), " INFO listening on ").negv("ipv6-port", g.pick("http://[::1]:8080/", "http://[fe80::1%25eth0]:9090/metrics", "http://0.0.0.0:8080/a@b")).s(" ready")
		case 4:
			g.l.s("broker=amqp://").negv("default-credentials", g.pick("guest:guest", "user:pass", "admin:abc")).s("@localhost:5672/")
		case 5:
			g.l.s("dsn=postgres://app:").negv("redacted-marker", "[REDACTED:url_password:"+randString(g.r, hexLower, 8)+"]").s("@db:5432/app")
		case 6:
			g.l.s(`{"url":"https://api.example.com/v1/search?q=`).negv("query", "a:Xk9vQ2mZ7w@b").s(`","status":200}`)
		default:
			g.l.s("redis://").negv("no-password", g.pick("cache:6379", ":@cache:6379", "default@cache:6379")).s("/0 connected")
		}
	}},
	{"aws-example", func(g *generator) {
		// The example key pair of the AWS documentation: it shows up in logs
		// of tests and tutorials and is no credential.
		g.l.s("docs example: AWS_ACCESS_KEY_ID=").negv("aws-doc-example", "AKIAIOSFODNN7EXAMPLE").s(" AWS_SECRET_ACCESS_KEY=").negv("aws-doc-example", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	}},
}

// ---- clean lines (the bulk of real logs) ----

func (g *generator) clean() {
	switch g.r.IntN(12) {
	case 0, 1:
		g.l.s(g.ip(), ` - - [`, g.clfTime(), `] "`, g.pick("GET", "GET", "POST", "PUT"), " ", g.path(), "?page=", strconv.Itoa(g.r.IntN(50)), `&sort=desc HTTP/1.1" `, g.pick("200", "200", "304", "404", "500"), " ", strconv.Itoa(g.r.IntN(90000)), ` "https://app.example.com/" "`, g.ua(), `"`)
	case 2, 3:
		g.l.s(`{"time":"`, g.isoTime(), `","level":"`, g.pick("info", "debug", "warn"), `","service":"`, g.svc(), `","msg":"`, g.pick("request completed", "cache miss", "order created", "payment authorized", "user session refreshed"), `","request_id":"`, uuid(g.r), `","duration_ms":`, strconv.Itoa(g.r.IntN(2000)), `,"status":`, g.pick("200", "201", "401", "503"), `}`)
	case 4:
		g.l.s(g.isoTime(), " ", g.pick("INFO ", "DEBUG", "WARN "), " [", g.pick("main", "http-nio-8080-exec-7", "pool-2-thread-1"), "] c.a.", g.svc(), ".Service : processed batch size=", strconv.Itoa(g.r.IntN(500)), " in ", strconv.Itoa(g.r.IntN(300)), "ms")
	case 5:
		g.l.s("\tat com.acme.", g.svc(), ".TokenFilter.doFilterInternal(TokenFilter.java:", strconv.Itoa(10+g.r.IntN(300)), ")")
	case 6:
		g.l.s(g.isoTime(), " stdout F level=info ts=", g.isoTime(), " caller=server.go:", strconv.Itoa(g.r.IntN(400)), " msg=\"handled request\" method=GET path=", g.path(), " status=200 bytes=", strconv.Itoa(g.r.IntN(9000)))
	case 7:
		g.l.s(time.Unix(g.ts, 0).UTC().Format("2006-01-02 15:04:05"), " 10.0.0.4 GET ", g.path(), " - 443 - ", g.ip(), " Mozilla/5.0+(Windows+NT+10.0) - 200 0 0 ", strconv.Itoa(g.r.IntN(400)))
	case 8:
		g.l.s(`[`, g.isoTime(), `] "GET `, g.path(), ` HTTP/2" 200 - 0 `, strconv.Itoa(g.r.IntN(9000)), ` 12 11 "`, g.ip(), `" "`, g.ua(), `" "`, uuid(g.r), `" "api.internal" "10.1.2.3:8080"`)
	case 9:
		g.l.s(`  File "/app/`, g.svc(), `/handlers.py", line `, strconv.Itoa(g.r.IntN(400)), `, in get_user`)
	case 10:
		g.l.s(g.isoTime(), " LOG:  duration: ", strconv.Itoa(g.r.IntN(90)), ".", strconv.Itoa(g.r.IntN(999)), " ms  statement: SELECT id, name FROM users WHERE id = $1")
	default:
		g.l.s("##[group]Run actions/checkout@v4 with: repository: acme/", g.svc(), " token: *** ssh-strict: true persist-credentials: true")
	}
}

// longLine writes a multi-MB JSON line (an HTTP body dump) with credentials in
// the middle and at the end, so they straddle read-buffer boundaries.
func (g *generator) longLine() {
	size := g.cfg.LongSize
	if size <= 0 {
		size = 3 << 20
	}
	g.l.s(`{"level":"debug","msg":"upstream response","body":"`)
	half := size / 2
	for len(g.l.b) < half {
		g.l.s(randString(g.r, b64std, 4096))
	}
	g.l.s(`","headers":{"authorization":"Bearer `).tok("jwt", "long-line", g.jwtTok()).s(`","x-trace":"`, uuid(g.r), `"},"dump":"`)
	for len(g.l.b) < size {
		g.l.s(randString(g.r, alnum+" ", 4096))
	}
	g.l.s(`","refresh_token":"`).tok("oauth", "long-line", opaqueToken(g.r)).s(`"}`)
}
