package scenario

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/enrich/geotest"
)

// Config sizes a scenario.
type Config struct {
	Seed uint64
	// Users is the number of background users (ordinary traffic that must not alert).
	Users int
	// Hours of traffic (at least 9: the long-flight trap needs 7 hours).
	Hours int
	// PerType is how many instances of each incident type and each benign trap are planted.
	PerType int
	// AppLinesPerAuthLine adds clean application log lines (realistic noise).
	AppLinesPerAuthLine int
	// Key is the fingerprint key tokenwatch will run with.
	Key []byte
}

// DefaultConfig is the size the tests and the demo use.
func DefaultConfig() Config {
	return Config{Seed: 1, Users: 200, Hours: 10, PerType: 3, AppLinesPerAuthLine: 2, Key: []byte("tokenwatch-demo-key")}
}

// Origin is the event time the scenario starts at.
var Origin = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)

// Issuer of every generated JWT.
const Issuer = "https://idp.example.com"

// TrustedProxies are the CDN ranges a scenario's tokenwatch must trust for
// X-Forwarded-For (the cdn_xff trap).
var TrustedProxies = []string{"103.21.244.0/22"}

// Incident is a planted attack that must raise an alert of Type on Fingerprint.
type Incident struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint"`
	// FirstBadTime is the event time of the first use that makes it an incident.
	FirstBadTime time.Time `json:"first_bad_time"`
	// Also lists alert types that may legitimately fire on the same token.
	Also []string `json:"also,omitempty"`
}

// PostureCase is a planted token-hygiene problem (package policy): a finding of
// Type must name its Fingerprint, or its ClientID, or its Service (whichever
// is set).
type PostureCase struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	ClientID    string   `json:"client_id,omitempty"`
	Service     string   `json:"service,omitempty"`
	Also        []string `json:"also,omitempty"`
}

// Trap is a benign pattern: no alert may fire on Fingerprint.
type Trap struct {
	ID          string `json:"id"`
	Pattern     string `json:"pattern"`
	Fingerprint string `json:"fingerprint"`
}

// Truth is what Generate planted.
type Truth struct {
	Seed      uint64        `json:"seed"`
	Incidents []Incident    `json:"incidents"`
	Traps     []Trap        `json:"traps"`
	Posture   []PostureCase `json:"posture"`
	// Background counts the ordinary tokens; none may alert.
	Background int `json:"background_tokens"`
	// Lines per output file.
	Lines map[string]int `json:"lines"`
}

// Files written by Generate, relative to its directory.
const (
	FileNginx       = "auth-nginx.log"
	FileEnvoy       = "auth-envoy.log"
	FileApp         = "app.log"
	FileRevocations = "revocations.jsonl"
	FileCityDB      = "city.mmdb"
	FileASNDB       = "asn.mmdb"
	FileTruth       = "truth.json"
	FilePolicy      = "policy.yaml"
)

// network is where a client sits.
type network struct {
	geotest.Network
	prefix netip.Prefix
}

func (n network) addr(host uint32) string {
	a := n.prefix.Addr()
	if a.Is4() {
		b := a.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		size := uint32(1) << (32 - n.prefix.Bits())
		v += 1 + host%(size-2)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
	}
	b := a.As16()
	b[8], b[9], b[14], b[15] = byte(host>>24), byte(host>>16), byte(host>>8), byte(host)|1
	return netip.AddrFrom16(b).String()
}

func networks() map[string]network {
	m := map[string]network{}
	for _, n := range geotest.World {
		key := n.City + "/" + itoa(int64(n.ASN))
		if strings.Contains(n.CIDR, ":") {
			key += "/v6"
		}
		m[key] = network{Network: n, prefix: netip.MustParsePrefix(n.CIDR)}
	}
	return m
}

// event is one auth-log request.
type event struct {
	scheme  string // Authorization scheme; "" means Bearer, "-" means no header
	query   string // appended to the path
	t       time.Time
	via     string // "nginx" or "envoy"
	ip      string // client address
	proxy   string // CDN edge address when the request came through one
	method  string
	path    string
	status  int
	ua      string
	token   string
	service string
}

type appLine struct {
	t    time.Time
	text string
}

type revocation struct {
	t   time.Time
	jti string
}

type gen struct {
	cfg   Config
	r     *rand.Rand
	nets  map[string]network
	auth  []event
	app   []appLine
	revs  []revocation
	truth Truth
	// lateNginx are nginx lines written after the rest (out-of-order arrival).
	lateNginx []event
	seq       int
}

var (
	uaChrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	uaSafari  = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	uaAndroid = "okhttp/4.12.0 (Android 14; Pixel 8)"
	uaPython  = "python-requests/2.32.3"
	uaCurl    = "curl/8.5.0"
	uaGo      = "Go-http-client/1.1"
	browsers  = []string{uaChrome, uaFirefox, uaSafari, uaAndroid}
	paths     = []string{"/api/v1/orders", "/api/v1/orders/8812", "/api/v1/profile", "/api/v1/cart", "/api/v2/search?q=lamp&page=2", "/api/v1/invoices", "/api/v1/payments/methods", "/api/v1/notifications"}
)

// Generate writes a scenario into dir and returns its truth.
func Generate(dir string, cfg Config) (*Truth, error) {
	if cfg.Hours < 9 {
		return nil, fmt.Errorf("scenario: hours = %d, need at least 9 for the long-flight trap", cfg.Hours)
	}
	if len(cfg.Key) == 0 {
		return nil, fmt.Errorf("scenario: a fingerprint key is required")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &gen{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), nets: networks()}
	g.truth.Seed = cfg.Seed
	g.background()
	for i := range cfg.PerType {
		g.incidents(i)
		g.traps(i)
		g.posture(i)
	}
	g.postureClients()
	if err := g.write(dir); err != nil {
		return nil, err
	}
	return &g.truth, nil
}

func (g *gen) net(key string) network {
	n, ok := g.nets[key]
	if !ok {
		panic("BUG: scenario network " + key + " not in geotest.World")
	}
	return n
}

func (g *gen) jwt(sub, client string, iat time.Time, life time.Duration, alg string) (tok, jti string) {
	g.seq++
	jti = fmt.Sprintf("jti-%d-%06d", g.cfg.Seed, g.seq)
	scope := "orders:read profile:read"
	if client == "mobile-app" {
		scope = "orders:read orders:write profile:read"
	}
	return makeJWT(g.r, alg, claims{Iss: Issuer, Sub: sub, Aud: "https://api.example.com", Iat: iat.Unix(), Exp: iat.Add(life).Unix(), Jti: jti, ClientID: client, Scope: scope}), jti
}

func (g *gen) fp(tok string) string { return Fingerprint(g.cfg.Key, tok) }

func (g *gen) use(t time.Time, ip, ua, tok string, status int) {
	via := "nginx"
	if g.r.IntN(3) == 0 {
		via = "envoy"
	}
	svc := map[string]string{"nginx": "api-gateway", "envoy": "edge-proxy"}[via]
	m := "GET"
	if g.r.IntN(5) == 0 {
		m = "POST"
	}
	g.auth = append(g.auth, event{t: t, via: via, ip: ip, method: m, path: paths[g.r.IntN(len(paths))], status: status, ua: ua, token: tok, service: svc})
}

// background is ordinary traffic: each user at home (or on mobile in the same
// metro), a fresh one-hour token every hour, a request every few minutes.
func (g *gen) background() {
	homes := []string{"London/2856", "Manchester/2856", "Berlin/3209", "Frankfurt am Main/3320", "New York/7922", "Sydney/1221", "São Paulo/28573", "Lagos/37148", "Manila/9299", "Linköping/29518", "Milton/209", "Changchun/4837"}
	end := Origin.Add(time.Duration(g.cfg.Hours) * time.Hour)
	for u := range g.cfg.Users {
		home := g.net(homes[u%len(homes)])
		host := g.r.Uint32()
		ua := browsers[g.r.IntN(len(browsers))]
		client := "web-portal"
		if ua == uaAndroid || ua == uaSafari {
			client = "mobile-app"
		}
		sub := fmt.Sprintf("user-%04d", u)
		for h := Origin.Add(time.Duration(g.r.IntN(3600)) * time.Second); h.Before(end); h = h.Add(time.Hour) {
			tok, _ := g.jwt(sub, client, h, time.Hour, "RS256")
			g.truth.Background++
			for t := h.Add(time.Duration(g.r.IntN(60)) * time.Second); t.Before(h.Add(59*time.Minute)) && t.Before(end); t = t.Add(time.Duration(120+g.r.IntN(600)) * time.Second) {
				status := 200
				switch x := g.r.IntN(40); {
				case x == 0:
					status = 500
				case x < 3:
					status = 404
				}
				g.use(t, home.addr(host), ua, tok, status)
			}
		}
	}
	// Service accounts with opaque tokens from a cloud region.
	gcp := g.net("Council Bluffs/15169")
	for s := range 5 {
		tok := "at_" + opaque(g.r, 40)
		g.truth.Background++
		host := g.r.Uint32()
		for t := Origin.Add(time.Duration(s) * time.Minute); t.Before(end); t = t.Add(time.Duration(60+g.r.IntN(240)) * time.Second) {
			g.use(t, gcp.addr(host), uaGo, tok, 200)
		}
	}
	// Clean application noise.
	services := []string{"orders", "billing-api", "inventory", "notifier", "search"}
	n := len(g.auth) * g.cfg.AppLinesPerAuthLine
	for i := range n {
		t := Origin.Add(time.Duration(g.r.Int64N(int64(end.Sub(Origin)))))
		svc := services[i%len(services)]
		g.app = append(g.app, appLine{t, g.cleanAppLine(t, svc)})
	}
}

func (g *gen) cleanAppLine(t time.Time, svc string) string {
	ts := t.Format("2006-01-02T15:04:05.000Z")
	switch g.r.IntN(6) {
	case 0:
		return fmt.Sprintf(`{"ts":"%s","level":"info","service":"%s","msg":"order placed","order_id":"%08x-%04x-4%03x-a%03x-%012x","items":%d}`, ts, svc, g.r.Uint32(), g.r.IntN(65536), g.r.IntN(4096), g.r.IntN(4096), g.r.Uint64()&0xffffffffffff, 1+g.r.IntN(5))
	case 1:
		return fmt.Sprintf(`ts=%s level=warn service=%s msg="slow query" duration_ms=%d table=orders sha256=%064x`, ts, svc, 200+g.r.IntN(3000), g.r.Uint64())
	case 2:
		return fmt.Sprintf("%s ERROR [%s] c.e.%s.Worker - job failed\njava.lang.IllegalStateException: connection reset\n\tat com.example.%s.Client.call(Client.java:%d)", ts, svc, svc, svc, 40+g.r.IntN(400))
	case 3:
		return fmt.Sprintf(`%s INFO  [%s] cache refreshed entries=%d etag="W/%x"`, ts, svc, g.r.IntN(100000), g.r.Uint64())
	case 4:
		return fmt.Sprintf(`{"ts":"%s","level":"debug","service":"%s","msg":"outgoing request","url":"https://inventory.internal/api/items?limit=50","headers":{"accept":"application/json","x-request-id":"%016x"}}`, ts, svc, g.r.Uint64())
	default:
		return fmt.Sprintf(`ts=%s level=info service=%s msg="health check ok" upstream=10.0.%d.%d:8080`, ts, svc, g.r.IntN(255), 1+g.r.IntN(254))
	}
}

// leakLine puts tok into an application log line of svc in one of the ways
// real services leak credentials.
func (g *gen) leakLine(t time.Time, svc, tok string, style int) string {
	ts := t.Format("2006-01-02T15:04:05.000Z")
	switch style % 3 {
	case 0:
		return fmt.Sprintf("%s ERROR [%s] c.e.%s.UpstreamClient - call failed: status=502 request headers {Authorization=Bearer %s, Accept=application/json}", ts, svc, svc, tok)
	case 1:
		return fmt.Sprintf(`{"ts":"%s","level":"debug","service":"%s","msg":"outgoing request","headers":{"authorization":"Bearer %s","accept":"application/json"}}`, ts, svc, tok)
	default:
		return fmt.Sprintf(`ts=%s level=info service=%s msg="redirect" url="https://app.example.com/callback#access_token=%s&token_type=Bearer&expires_in=3600"`, ts, svc, tok)
	}
}

func (g *gen) incident(typ string, tok string, first time.Time, also ...string) {
	g.truth.Incidents = append(g.truth.Incidents, Incident{ID: fmt.Sprintf("%s-%d", typ, len(g.truth.Incidents)+1), Type: typ, Fingerprint: g.fp(tok), FirstBadTime: first.UTC(), Also: also})
}

func (g *gen) trap(pattern, tok string) {
	g.truth.Traps = append(g.truth.Traps, Trap{ID: fmt.Sprintf("%s-%d", pattern, len(g.truth.Traps)+1), Pattern: pattern, Fingerprint: g.fp(tok)})
}

// at returns a time inside the scenario for instance i of a planted pattern,
// spread so patterns do not all start together.
func (g *gen) at(i, slot int) time.Time {
	return Origin.Add(time.Duration(30+i*97+slot*13) * time.Minute)
}

func (g *gen) incidents(i int) {
	// impossible_travel: London, then Sydney 20 minutes later.
	{
		t0 := g.at(i, 0)
		tok, _ := g.jwt(fmt.Sprintf("travel-%d", i), "web-portal", t0.Add(-5*time.Minute), time.Hour, "RS256")
		lon, syd := g.net("London/2856"), g.net("Sydney/1221")
		g.use(t0, lon.addr(uint32(i)), uaChrome, tok, 200)
		g.use(t0.Add(5*time.Minute), lon.addr(uint32(i)), uaChrome, tok, 200)
		bad := t0.Add(25 * time.Minute)
		g.use(bad, syd.addr(uint32(i)), uaChrome, tok, 200)
		g.incident("impossible_travel", tok, bad, "concurrent_replay")
	}
	// impossible_travel whose far-away use reaches the log first (late arrival).
	{
		t0 := g.at(i, 1)
		tok, _ := g.jwt(fmt.Sprintf("travel-late-%d", i), "web-portal", t0.Add(-2*time.Minute), time.Hour, "RS256")
		ber, sp := g.net("Berlin/3209"), g.net("São Paulo/28573")
		g.use(t0.Add(15*time.Minute), sp.addr(uint32(i)), uaFirefox, tok, 200)
		// The Berlin use happened first but its line arrives 40 s late.
		g.lateNginx = append(g.lateNginx, event{t: t0, via: "nginx", ip: ber.addr(uint32(i)), method: "GET", path: "/api/v1/profile", status: 200, ua: uaFirefox, token: tok, service: "api-gateway"})
		g.incident("impossible_travel", tok, t0.Add(15*time.Minute), "concurrent_replay")
	}
	// concurrent_replay: one city, two networks, a browser and a script, interleaved.
	{
		t0 := g.at(i, 2)
		tok, _ := g.jwt(fmt.Sprintf("replay-%d", i), "web-portal", t0.Add(-time.Minute), time.Hour, "RS256")
		tel, voda := g.net("Frankfurt am Main/3320"), g.net("Frankfurt am Main/3209")
		g.use(t0, tel.addr(uint32(i)), uaChrome, tok, 200)
		bad := t0.Add(70 * time.Second)
		g.use(bad, voda.addr(uint32(i)), uaPython, tok, 200)
		g.use(t0.Add(2*time.Minute), tel.addr(uint32(i)), uaChrome, tok, 200)
		g.use(t0.Add(3*time.Minute), voda.addr(uint32(i)), uaPython, tok, 200)
		g.incident("concurrent_replay", tok, bad)
	}
	// leaked_token_replay: used in New York, leaked in a log, replayed from a cloud VM.
	{
		t0 := g.at(i, 3)
		tok, _ := g.jwt(fmt.Sprintf("leak-replay-%d", i), "legacy-client", t0.Add(-time.Minute), 8*time.Hour, "RS256")
		ny, gcp := g.net("New York/7922"), g.net("Council Bluffs/15169")
		g.use(t0, ny.addr(uint32(i)), uaSafari, tok, 200)
		g.use(t0.Add(4*time.Minute), ny.addr(uint32(i)), uaSafari, tok, 200)
		leak := t0.Add(10 * time.Minute)
		g.app = append(g.app, appLine{leak, g.leakLine(leak, "billing-api", tok, i)})
		bad := t0.Add(2 * time.Hour)
		g.use(bad, gcp.addr(uint32(1000+i)), uaCurl, tok, 200)
		g.incident("leaked_token_replay", tok, bad, "token_leak")
		g.incident("token_leak", tok, leak, "leaked_token_replay")
	}
	// post_revocation_use: revoked by jti, then accepted.
	{
		t0 := g.at(i, 4)
		tok, jti := g.jwt(fmt.Sprintf("revoked-%d", i), "web-portal", t0.Add(-time.Minute), time.Hour, "RS256")
		home := g.net("Manchester/2856")
		g.use(t0, home.addr(uint32(i)), uaFirefox, tok, 200)
		g.revs = append(g.revs, revocation{t0.Add(10 * time.Minute), jti})
		bad := t0.Add(20 * time.Minute)
		g.use(bad, home.addr(uint32(i)), uaFirefox, tok, 200)
		g.incident("post_revocation_use", tok, bad)
	}
	// expired_token_accepted: exp an hour in the past, 200.
	{
		t0 := g.at(i, 5)
		tok, _ := g.jwt(fmt.Sprintf("expired-%d", i), "web-portal", t0.Add(-2*time.Hour), time.Hour, "RS256")
		home := g.net("Linköping/29518")
		g.use(t0, home.addr(uint32(i)), uaChrome, tok, 200)
		g.incident("expired_token_accepted", tok, t0)
	}
	// alg_none_accepted: unsigned JWT, 200.
	{
		t0 := g.at(i, 6)
		tok, _ := g.jwt(fmt.Sprintf("unsigned-%d", i), "web-portal", t0.Add(-time.Minute), time.Hour, "none")
		home := g.net("Milton/209")
		g.use(t0, home.addr(uint32(i)), uaCurl, tok, 200)
		g.incident("alg_none_accepted", tok, t0)
	}
	// token_leak of an opaque token that is never used afterwards.
	{
		t0 := g.at(i, 7)
		tok := opaque(g.r, 43)
		g.app = append(g.app, appLine{t0, g.leakLine(t0, "notifier", tok, i+1)})
		g.incident("token_leak", tok, t0)
	}
}

func (g *gen) traps(i int) {
	// metro_switch: home broadband to mobile in the same city.
	{
		t0 := g.at(i, 8)
		tok, _ := g.jwt(fmt.Sprintf("metro-%d", i), "mobile-app", t0.Add(-time.Minute), time.Hour, "RS256")
		bt, vm := g.net("London/2856"), g.net("London/5089")
		g.use(t0, bt.addr(uint32(50+i)), uaSafari, tok, 200)
		g.use(t0.Add(10*time.Minute), vm.addr(uint32(50+i)), uaSafari, tok, 200)
		g.use(t0.Add(12*time.Minute), vm.addr(uint32(51+i)), uaSafari, tok, 200)
		g.trap("metro_switch", tok)
	}
	// vpn_same_country: corporate VPN egress in another city of the same country.
	{
		t0 := g.at(i, 9)
		tok, _ := g.jwt(fmt.Sprintf("vpn-%d", i), "web-portal", t0.Add(-time.Minute), time.Hour, "RS256")
		ber, fra := g.net("Berlin/3209"), g.net("Frankfurt am Main/3320")
		g.use(t0, ber.addr(uint32(60+i)), uaChrome, tok, 200)
		g.use(t0.Add(6*time.Minute), fra.addr(uint32(60+i)), uaChrome, tok, 200)
		g.use(t0.Add(20*time.Minute), fra.addr(uint32(60+i)), uaChrome, tok, 200)
		g.trap("vpn_same_country", tok)
	}
	// ipv6_privacy: a new temporary address in the same /64 for each request.
	{
		t0 := g.at(i, 10)
		tok, _ := g.jwt(fmt.Sprintf("v6priv-%d", i), "web-portal", t0.Add(-time.Minute), time.Hour, "RS256")
		p := netip.MustParsePrefix("2a02:8100:77::/48").Addr().As16()
		p[6], p[7] = byte(i), 9
		for k := range 5 {
			a := p
			for j := 8; j < 16; j++ {
				a[j] = byte(g.r.UintN(256))
			}
			g.use(t0.Add(time.Duration(k*3)*time.Minute), netip.AddrFrom16(a).String(), uaFirefox, tok, 200)
		}
		g.trap("ipv6_privacy", tok)
	}
	// dual_stack: the same client alternating IPv4 and IPv6.
	{
		t0 := g.at(i, 11)
		tok, _ := g.jwt(fmt.Sprintf("dual-%d", i), "web-portal", t0.Add(-time.Minute), time.Hour, "RS256")
		v4, v6 := g.net("Berlin/3209"), g.net("Berlin/3209/v6")
		for k := range 4 {
			ip := v4.addr(uint32(70 + i))
			if k%2 == 1 {
				ip = v6.addr(uint32(70 + i))
			}
			g.use(t0.Add(time.Duration(k*2)*time.Minute), ip, uaChrome, tok, 200)
		}
		g.trap("dual_stack", tok)
	}
	// long_flight: London, then New York seven hours later.
	{
		t0 := Origin.Add(time.Duration(20+i*5) * time.Minute)
		tok, _ := g.jwt(fmt.Sprintf("flight-%d", i), "legacy-client", t0.Add(-time.Minute), 12*time.Hour, "RS256")
		lon, ny := g.net("London/2856"), g.net("New York/7922")
		g.use(t0, lon.addr(uint32(80+i)), uaSafari, tok, 200)
		g.use(t0.Add(7*time.Hour), ny.addr(uint32(80+i)), uaSafari, tok, 200)
		g.trap("long_flight", tok)
	}
	// rejected_after_expiry: an expired token, refused with 401.
	{
		t0 := g.at(i, 12)
		tok, _ := g.jwt(fmt.Sprintf("rejected-exp-%d", i), "web-portal", t0.Add(-90*time.Minute), time.Hour, "RS256")
		home := g.net("Manila/9299")
		g.use(t0, home.addr(uint32(90+i)), uaAndroid, tok, 401)
		g.use(t0.Add(30*time.Second), home.addr(uint32(90+i)), uaAndroid, tok, 401)
		g.trap("rejected_after_expiry", tok)
	}
	// rejected_after_revocation: revoked, then refused with 401/403.
	{
		t0 := g.at(i, 13)
		tok, jti := g.jwt(fmt.Sprintf("rejected-rev-%d", i), "web-portal", t0.Add(-time.Minute), time.Hour, "RS256")
		home := g.net("Lagos/37148")
		g.use(t0, home.addr(uint32(100+i)), uaChrome, tok, 200)
		g.revs = append(g.revs, revocation{t0.Add(5 * time.Minute), jti})
		g.use(t0.Add(8*time.Minute), home.addr(uint32(100+i)), uaChrome, tok, 401)
		g.use(t0.Add(9*time.Minute), home.addr(uint32(100+i)), uaChrome, tok, 403)
		g.trap("rejected_after_revocation", tok)
	}
	// cdn_xff: some requests arrive through a CDN edge in another country; the
	// client address is in X-Forwarded-For and the CDN range is trusted.
	{
		t0 := g.at(i, 14)
		tok, _ := g.jwt(fmt.Sprintf("cdn-%d", i), "web-portal", t0.Add(-time.Minute), time.Hour, "RS256")
		home, cdn := g.net("London/2856"), g.net("/13335")
		client := home.addr(uint32(110 + i))
		for k := range 4 {
			e := event{t: t0.Add(time.Duration(k*2) * time.Minute), via: "nginx", ip: client, method: "GET", path: "/api/v1/orders", status: 200, ua: uaChrome, token: tok, service: "api-gateway"}
			if k%2 == 1 {
				e.proxy = cdn.addr(uint32(7 + k))
			}
			g.auth = append(g.auth, e)
		}
		g.trap("cdn_xff", tok)
	}
	// clock_skew: accepted a few seconds after exp (resource server clock behind).
	{
		t0 := g.at(i, 15)
		tok, _ := g.jwt(fmt.Sprintf("skew-%d", i), "web-portal", t0.Add(-time.Hour), time.Hour, "RS256")
		home := g.net("Sydney/1221")
		g.use(t0.Add(-2*time.Minute), home.addr(uint32(120+i)), uaSafari, tok, 200)
		g.use(t0.Add(4*time.Second), home.addr(uint32(120+i)), uaSafari, tok, 200)
		g.trap("clock_skew", tok)
	}
	// out_of_order: a metro switch whose lines arrive in reverse order.
	{
		t0 := g.at(i, 16)
		tok, _ := g.jwt(fmt.Sprintf("ooo-%d", i), "mobile-app", t0.Add(-time.Minute), time.Hour, "RS256")
		bt, vm := g.net("London/2856"), g.net("London/5089")
		g.use(t0.Add(3*time.Minute), vm.addr(uint32(130+i)), uaAndroid, tok, 200)
		g.lateNginx = append(g.lateNginx, event{t: t0, via: "nginx", ip: bt.addr(uint32(130 + i)), method: "GET", path: "/api/v1/cart", status: 200, ua: uaAndroid, token: tok, service: "api-gateway"})
		g.trap("out_of_order", tok)
	}
}
