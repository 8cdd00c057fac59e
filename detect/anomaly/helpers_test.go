package anomaly

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// place is a real city with a real network.
type place struct {
	ip        string
	asn       uint32
	org       string
	country   string
	continent string
	city      string
	lat, lon  float64
	radius    uint16
	label     string
}

var (
	frankfurt  = place{"80.187.100.17", 3320, "Deutsche Telekom AG", "DE", "EU", "Frankfurt am Main", 50.1109, 8.6821, 20, ""}
	berlinHome = place{"91.64.12.8", 3320, "Deutsche Telekom AG", "DE", "EU", "Berlin", 52.5200, 13.4050, 10, ""}
	berlinLTE  = place{"109.40.1.77", 3209, "Vodafone GmbH", "DE", "EU", "Berlin", 52.5244, 13.4105, 50, ""}
	munichCorp = place{"195.145.7.1", 8767, "M-net Telekommunikations GmbH", "DE", "EU", "Munich", 48.1351, 11.5820, 5, ""}
	sydney     = place{"1.128.0.9", 1221, "Telstra Limited", "AU", "OC", "Sydney", -33.8688, 151.2093, 10, ""}
	london     = place{"81.2.69.142", 2856, "British Telecommunications PLC", "GB", "EU", "London", 51.5074, -0.1278, 10, ""}
	newYork    = place{"24.185.3.4", 7922, "Comcast Cable Communications, LLC", "US", "NA", "New York", 40.7128, -74.0060, 10, ""}
	sanFran    = place{"73.92.10.4", 7922, "Comcast Cable Communications, LLC", "US", "NA", "San Francisco", 37.7749, -122.4194, 10, ""}
	ashburnVPN = place{"3.80.11.9", 14618, "Amazon.com, Inc.", "US", "NA", "Ashburn", 39.0438, -77.4874, 20, ""}
	paris      = place{"90.84.1.3", 3215, "Orange S.A.", "FR", "EU", "Paris", 48.8566, 2.3522, 10, ""}
	moscow     = place{"95.24.0.5", 12389, "PJSC Rostelecom", "RU", "EU", "Moscow", 55.7558, 37.6173, 20, ""}
	strasbourg = place{"90.100.3.3", 3215, "Orange S.A.", "FR", "EU", "Strasbourg", 48.5734, 7.7521, 10, ""}
	kehl       = place{"109.41.9.9", 3209, "Vodafone GmbH", "DE", "EU", "Kehl", 48.5722, 7.8156, 10, ""}
	cfEdgeFRA  = place{"172.70.1.1", 13335, "Cloudflare, Inc.", "DE", "EU", "Frankfurt am Main", 50.1109, 8.6821, 100, ""}
	cfEdgeSYD  = place{"172.68.1.1", 13335, "Cloudflare, Inc.", "AU", "OC", "Sydney", -33.8688, 151.2093, 100, ""}
	private10  = place{"10.1.2.3", 0, "", "", "", "", 0, 0, 0, "private"}
	private192 = place{"192.168.7.7", 0, "", "", "", "", 0, 0, 0, "private"}
	v6Priv1    = place{"2003:e6:2f0a:1c00:8d1:5e2a:11aa:2b01", 3320, "Deutsche Telekom AG", "DE", "EU", "Berlin", 52.5200, 13.4050, 10, ""}
	v6Priv2    = place{"2003:e6:2f0a:1c00:f1c2:99b:4e21:7a10", 3320, "Deutsche Telekom AG", "DE", "EU", "Berlin", 52.5200, 13.4050, 10, ""}
	v6NoASN1   = place{"2a02:8108:1a40:7e00::1:11", 0, "", "DE", "EU", "Cologne", 50.9375, 6.9603, 20, ""}
	v6NoASN2   = place{"2a02:8108:1a40:7e00::9:a1", 0, "", "NL", "EU", "Amsterdam", 52.3676, 4.9041, 20, ""}
	v6Berlin   = place{"2a01:c22:8c1e:f00::2", 3209, "Vodafone GmbH", "DE", "EU", "Berlin", 52.5200, 13.4050, 10, ""}
	v4BerlinVF = place{"109.40.200.3", 3209, "Vodafone GmbH", "DE", "EU", "Berlin", 52.5200, 13.4050, 10, ""}
)

const (
	uaChrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaSafari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	uaCurl   = "curl/8.5.0"
)

var t0 = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

func fp(b byte) tokenwatch.Fingerprint {
	var f tokenwatch.Fingerprint
	for i := range f {
		f[i] = b ^ byte(i*37)
	}
	return f
}

// use builds a token use of token fp(tok) at t0+at from p.
type useOpt func(*tokenwatch.TokenUse)

func use(tok byte, at time.Duration, p place, opts ...useOpt) tokenwatch.TokenUse {
	u := tokenwatch.TokenUse{
		Fingerprint: fp(tok),
		Kind:        "jwt",
		Rule:        "authorization.bearer",
		Redacted:    "eyJhbG…Qssw",
		Time:        t0.Add(at),
		UserAgent:   uaChrome,
		Status:      200,
		Service:     "api-gateway",
		Method:      "GET",
		Path:        "/v1/me",
		Origin:      tokenwatch.Origin{Source: "auth-logs", Partition: 0, Offset: int64(tok)*1_000_000 + int64(at/time.Second)},
		JWT:         &tokenwatch.JWTInfo{Alg: "RS256", Iss: "https://idp.example.com", Sub: "alice", ClientID: "web", Exp: t0.Add(24 * time.Hour).Unix()},
	}
	if p.ip != "" {
		u.IP = netip.MustParseAddr(p.ip)
	}
	u.Geo = tokenwatch.Geo{ASN: p.asn, ASOrg: p.org, Country: p.country, Continent: p.continent, City: p.city,
		Lat: p.lat, Lon: p.lon, RadiusKm: p.radius, HasLocation: p.city != "", Label: p.label}
	for _, o := range opts {
		o(&u)
	}
	return u
}

func withUA(ua string) useOpt { return func(u *tokenwatch.TokenUse) { u.UserAgent = ua } }
func withStatus(s int) useOpt { return func(u *tokenwatch.TokenUse) { u.Status = s } }
func withJTI(iss, jti string) useOpt {
	return func(u *tokenwatch.TokenUse) { u.JWT.Iss, u.JWT.Jti = iss, jti }
}
func withExp(t time.Time) useOpt { return func(u *tokenwatch.TokenUse) { u.JWT.Exp = t.Unix() } }
func withAlgNone() useOpt {
	return func(u *tokenwatch.TokenUse) { u.JWT.Alg, u.JWT.AlgNone = "none", true }
}
func opaque() useOpt {
	return func(u *tokenwatch.TokenUse) { u.JWT, u.Kind, u.Redacted = nil, "bearer", "tw_abc…9f3e" }
}
func asLeak(service string) useOpt {
	return func(u *tokenwatch.TokenUse) {
		u.Leak, u.Service, u.Status, u.UserAgent = true, service, 0, ""
		u.Origin.Source = "app-logs"
	}
}
func fromFile(path string, line int64) useOpt {
	return func(u *tokenwatch.TokenUse) { u.Origin = tokenwatch.Origin{Source: path, Partition: -1, Offset: line} }
}

var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newTestEngine(t testing.TB, mod ...func(*Config)) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Shards = 4
	for _, m := range mod {
		m(&cfg)
	}
	e, err := New(cfg, WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// run observes uses in the given order and returns all alerts.
func run(e *Engine, uses ...tokenwatch.TokenUse) []tokenwatch.Alert {
	var out []tokenwatch.Alert
	for i := range uses {
		out = e.Observe(&uses[i], out)
	}
	return out
}

func types(as []tokenwatch.Alert) []string {
	var ts []string
	for _, a := range as {
		ts = append(ts, a.Type)
	}
	return ts
}

func netipOf(s string) netip.Addr { return netip.MustParseAddr(s) }
