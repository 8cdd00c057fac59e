// Package storetest builds a realistic, deterministic data set of token uses,
// leaks, alerts, revocations and deliveries for tests of the store and of the
// dashboards' queries. It must not be imported by non-test code paths of the
// pipeline; it exists so the data seeded into ClickHouse in tests goes through
// the same row-building code as production (store.Rows).
package storetest

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/store"
)

// Names of things in the data set that tests look up.
const (
	// TravelToken is used from Frankfurt then, 20 minutes later, from Sydney.
	TravelToken = "travel"
	// LeakedToken leaks in checkout's logs, is replayed from a VPS, revoked,
	// then used again (post-revocation use, rejected with 401).
	LeakedToken = "leaked"
	// NewLeaker is a service that leaks only in the last day; OldLeaker
	// leaked only before the last three days.
	NewLeaker = "reports"
	OldLeaker = "search"
	// LeakedJTI is the jti of LeakedToken.
	LeakedJTI = "jti-leaked-0001"
)

// FP returns the fingerprint the data set uses for a named token.
func FP(name string) tokenwatch.Fingerprint {
	s := sha256.Sum256([]byte("storetest:" + name))
	var f tokenwatch.Fingerprint
	copy(f[:], s[:16])
	return f
}

type place struct {
	ip                     string
	asn                    uint32
	org, country, cont, ct string
	lat, lon               float64
}

var places = []place{
	{"81.2.69.142", 3320, "Deutsche Telekom AG", "DE", "EU", "Frankfurt am Main", 50.1109, 8.6821},
	{"2a02:2e0:3fe:1001::1", 3320, "Deutsche Telekom AG", "DE", "EU", "Berlin", 52.52, 13.405},
	{"1.128.0.1", 1221, "Telstra", "AU", "OC", "Sydney", -33.8688, 151.2093},
	{"45.33.32.156", 63949, "Akamai Connected Cloud", "US", "NA", "Fremont", 37.5485, -121.9886},
	{"89.160.20.112", 29518, "Bredband2 AB", "SE", "EU", "Linköping", 58.4167, 15.6167},
	{"175.16.199.1", 4837, "CHINA UNICOM", "CN", "AS", "Changchun", 43.88, 125.3228},
}

func (p place) geo() tokenwatch.Geo {
	return tokenwatch.Geo{ASN: p.asn, ASOrg: p.org, Country: p.country, Continent: p.cont, City: p.ct,
		Lat: p.lat, Lon: p.lon, RadiusKm: 20, HasLocation: true}
}

type client struct {
	id, iss   string
	lifetime  int64
	scope     []string
	bound     bool
	audiences []string
}

var clients = []client{
	{"web-frontend", "https://idp.example.com", 3600, []string{"openid", "profile", "orders:read"}, false, []string{"api"}},
	{"mobile-app", "https://idp.example.com", 86400, []string{"openid", "orders:read", "orders:write", "payments:write"}, false, []string{"api", "payments"}},
	{"ci-deployer", "https://idp.example.com", 900, []string{"deploy"}, true, []string{"deploy-api"}},
	{"partner-sync", "https://partners.example.net", 604800, []string{"orders:read", "orders:write", "customers:read", "customers:write", "admin"}, false, []string{"api"}},
}

// DataSet is what Generate returns.
type DataSet struct {
	Batches    []tokenwatch.Batch
	Deliveries []store.Delivery
	// Uses, Leaks, Alerts and Revocations count what the batches hold.
	Uses, Leaks, Alerts, Revocations int
}

// Generate returns the data set for the week before now, deterministically.
func Generate(now time.Time) DataSet {
	now = now.UTC().Truncate(time.Second)
	r := rand.New(rand.NewPCG(42, 7))
	var ds DataSet
	offsets := map[string]int64{}
	origin := func(topic string) tokenwatch.Origin {
		offsets[topic]++
		return tokenwatch.Origin{Source: topic, Partition: int32(offsets[topic] % 3), Offset: offsets[topic]}
	}
	jwt := func(c client, name string, iat time.Time) *tokenwatch.JWTInfo {
		j := &tokenwatch.JWTInfo{Alg: "RS256", Kid: "k1", Typ: "JWT", Iss: c.iss, Sub: "user-" + name,
			Aud: c.audiences, Iat: iat.Unix(), Exp: iat.Unix() + c.lifetime, Jti: "jti-" + name,
			ClientID: c.id, Scope: c.scope, LifetimeSeconds: c.lifetime}
		if c.bound {
			j.CnfJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
		}
		j.Expired = now.Unix() > j.Exp
		return j
	}
	use := func(name string, t time.Time, p place, c client, service string, status int, leak bool) tokenwatch.TokenUse {
		topic := "auth-logs"
		kind := "jwt"
		if leak {
			topic = "app-logs"
		}
		fp := FP(name)
		u := tokenwatch.TokenUse{
			Fingerprint: fp, Kind: kind, Rule: "authorization.bearer", Redacted: "eyJhbG…" + fp.String()[:4],
			Leak: leak, Time: t, IP: netip.MustParseAddr(p.ip), Geo: p.geo(),
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", User: "user-" + name,
			Method: "GET", Path: "/api/orders", Status: status, Service: service, Host: service + ".internal",
			Scheme: "Bearer", JWT: jwt(c, name, t.Add(-5*time.Minute)), Origin: origin(topic),
		}
		if c.bound {
			u.Scheme = "DPoP"
			u.DPoPProof = true
			u.HeadersLogged = true
		}
		if leak {
			u.Rule = "jwt.compact"
			u.Method, u.Path, u.Status = "", "", 0
			u.Param = "access_token"
		}
		return u
	}

	var b tokenwatch.Batch
	flush := func() {
		if len(b.Uses)+len(b.Alerts)+len(b.Revocations) > 0 {
			ds.Uses += len(b.Uses)
			ds.Alerts += len(b.Alerts)
			ds.Revocations += len(b.Revocations)
			for i := range b.Uses {
				if b.Uses[i].Leak {
					ds.Leaks++
				}
			}
			ds.Batches = append(ds.Batches, b)
		}
		b = tokenwatch.Batch{}
	}

	// Background: ordinary uses by many tokens over the week, from their home.
	for i := range 300 {
		c := clients[i%len(clients)]
		p := places[[]int{0, 1, 4}[i%3]]
		t := now.Add(-time.Duration(r.IntN(7*24*3600)) * time.Second)
		b.Uses = append(b.Uses, use(fmt.Sprintf("bg-%d", i%60), t, p, c, []string{"orders-api", "payments-api", "deploy-api"}[i%3], 200, false))
		if len(b.Uses) == 100 {
			flush()
		}
	}
	flush()

	// Leaks: checkout leaks all week, billing a little, search (OldLeaker)
	// only 4-7 days ago, reports (NewLeaker) only in the last day.
	leak := func(name, service string, t time.Time) {
		c := clients[r.IntN(len(clients))]
		u := use(name, t, places[0], c, service, 0, true)
		u.Index = 0
		b.Uses = append(b.Uses, u)
	}
	for i := range 40 {
		leak(fmt.Sprintf("co-%d", i), "checkout", now.Add(-time.Duration(r.IntN(7*24))*time.Hour-time.Duration(r.IntN(3600))*time.Second))
	}
	for i := range 8 {
		leak(fmt.Sprintf("bi-%d", i), "billing", now.Add(-time.Duration(r.IntN(7*24))*time.Hour))
	}
	for i := range 10 {
		leak(fmt.Sprintf("se-%d", i), OldLeaker, now.Add(-time.Duration(4*24+r.IntN(3*24))*time.Hour))
	}
	for i := range 6 {
		leak(fmt.Sprintf("re-%d", i), NewLeaker, now.Add(-time.Duration(1+r.IntN(20))*time.Hour))
	}
	leak(LeakedToken, "checkout", now.Add(-6*time.Hour))
	flush()

	// Impossible travel: Frankfurt, then Sydney 20 minutes later.
	t0 := now.Add(-3 * time.Hour)
	u1 := use(TravelToken, t0, places[0], clients[0], "orders-api", 200, false)
	u2 := use(TravelToken, t0.Add(20*time.Minute), places[2], clients[0], "orders-api", 200, false)
	b.Uses = append(b.Uses, u1, u2)
	b.Alerts = append(b.Alerts, alert("impossible_travel", tokenwatch.SeverityHigh, &u2, []*tokenwatch.TokenUse{&u1, &u2},
		"Token eyJhbG… used from Frankfurt am Main, DE then 20 minutes later from Sydney, AU (16,500 km apart)."))
	flush()

	// Leaked token: leak at now-6h (above), replay from a VPS, revocation,
	// post-revocation use that is rejected.
	lt := now.Add(-5 * time.Hour)
	replay := use(LeakedToken, lt, places[3], clients[1], "orders-api", 200, false)
	replay.JWT.Jti = LeakedJTI
	b.Uses = append(b.Uses, replay)
	leakAlert := alert("leaked_token_replay", tokenwatch.SeverityCritical, &replay, []*tokenwatch.TokenUse{&replay},
		"Token eyJhbG… leaked in checkout logs was replayed 1 hour later from Akamai Connected Cloud (AS63949), Fremont, US.")
	b.Alerts = append(b.Alerts, leakAlert)
	flush()
	b.Revocations = append(b.Revocations, tokenwatch.Revocation{Fingerprint: FP(LeakedToken), JTI: LeakedJTI,
		Issuer: clients[1].iss, Time: lt.Add(4 * time.Minute), Reason: "tokenwatch", Origin: origin("revocations")})
	flush()
	post := use(LeakedToken, lt.Add(30*time.Minute), places[5], clients[1], "orders-api", 401, false)
	post.JWT.Jti = LeakedJTI
	b.Uses = append(b.Uses, post)
	b.Alerts = append(b.Alerts, alert("post_revocation_use", tokenwatch.SeverityHigh, &post, []*tokenwatch.TokenUse{&post},
		"Revoked token eyJhbG… was presented from CHINA UNICOM (AS4837), Changchun, CN 30 minutes after revocation; the service answered 401."))
	flush()

	// More alerts over the week: one of each remaining type and repeated leaks.
	types := []struct {
		typ string
		sev tokenwatch.Severity
	}{
		{"token_leak", tokenwatch.SeverityMedium}, {"concurrent_replay", tokenwatch.SeverityHigh},
		{"expired_token_accepted", tokenwatch.SeverityMedium}, {"alg_none_accepted", tokenwatch.SeverityCritical},
		{"lifetime_policy_violation", tokenwatch.SeverityLow},
	}
	for i := range 25 {
		ty := types[i%len(types)]
		name := fmt.Sprintf("al-%d", i)
		t := now.Add(-time.Duration(r.IntN(6*24))*time.Hour - time.Duration(r.IntN(3600))*time.Second)
		u := use(name, t, places[r.IntN(len(places))], clients[i%len(clients)], "orders-api", 200, false)
		b.Uses = append(b.Uses, u)
		a := alert(ty.typ, ty.sev, &u, []*tokenwatch.TokenUse{&u}, fmt.Sprintf("Token %s: %s.", u.Redacted, ty.typ))
		b.Alerts = append(b.Alerts, a)
		if i%5 == 0 { // a re-raise with grown evidence
			a2 := a
			a2.Update = 1
			a2.DetectedAt = a.DetectedAt.Add(time.Minute)
			a2.Evidence = append(append([]tokenwatch.Evidence{}, a.Evidence...), a.Evidence[0])
			b.Alerts = append(b.Alerts, a2)
		}
	}
	flush()

	// Deliveries of the critical alert: webhook (retry then delivered), RFC 7009 revocation.
	ds.Deliveries = []store.Delivery{
		{AlertID: leakAlert.ID, Sink: "soar", SinkKind: "webhook", Attempt: 1, StatusCode: 503, Outcome: "retry", Error: "503 Service Unavailable", Time: lt.Add(time.Second), Duration: 120 * time.Millisecond},
		{AlertID: leakAlert.ID, Sink: "soar", SinkKind: "webhook", Attempt: 2, StatusCode: 200, Outcome: "delivered", Time: lt.Add(3 * time.Second), Duration: 80 * time.Millisecond},
		{AlertID: leakAlert.ID, Sink: "idp-revoke", SinkKind: "rfc7009", Attempt: 1, StatusCode: 200, Outcome: "delivered", Time: lt.Add(2 * time.Minute), Duration: 40 * time.Millisecond},
		{AlertID: "deadbeef", Sink: "soar", SinkKind: "webhook", Attempt: 8, StatusCode: 500, Outcome: "dead_letter", Error: "500 Internal Server Error", Time: now.Add(-2 * time.Hour), Duration: 300 * time.Millisecond},
	}
	return ds
}

func alert(typ string, sev tokenwatch.Severity, trigger *tokenwatch.TokenUse, uses []*tokenwatch.TokenUse, summary string) tokenwatch.Alert {
	a := tokenwatch.Alert{
		ID:   fmt.Sprintf("%x", sha256.Sum256([]byte(typ+trigger.Fingerprint.String()+trigger.Time.String())))[:32],
		Type: typ, Severity: sev, Fingerprint: trigger.Fingerprint.String(), Kind: trigger.Kind, Redacted: trigger.Redacted,
		Service: trigger.Service, EventTime: trigger.Time, DetectedAt: trigger.Time.Add(800 * time.Millisecond), Summary: summary,
	}
	if j := trigger.JWT; j != nil {
		a.JTI, a.Issuer, a.Subject, a.ClientID = j.Jti, j.Iss, j.Sub, j.ClientID
	}
	for _, u := range uses {
		a.Evidence = append(a.Evidence, tokenwatch.EvidenceOf(u))
	}
	return a
}

// Rows returns the rows of the whole data set, built by store.Rows.
func (ds DataSet) Rows() (*store.Rows, error) {
	rows := store.NewRows()
	for i := range ds.Batches {
		if err := rows.AddBatch(&ds.Batches[i]); err != nil {
			return nil, err
		}
	}
	for i := range ds.Deliveries {
		rows.AddDelivery(&ds.Deliveries[i])
	}
	return rows, nil
}
