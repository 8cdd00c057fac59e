package anomaly

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

const (
	travel     = tokenwatch.AlertImpossibleTravel
	concurrent = tokenwatch.AlertConcurrentReplay
	leaked     = tokenwatch.AlertLeakedTokenReplay
	revokedUse = tokenwatch.AlertPostRevocationUse
	expired    = tokenwatch.AlertExpiredTokenAccepted
	algNone    = tokenwatch.AlertAlgNoneAccepted
	leak       = tokenwatch.AlertTokenLeak
)

// TestRules runs each rule's true positives and the benign patterns that must
// not alert. Uses are observed in the order listed.
func TestRules(t *testing.T) {
	min, hour := time.Minute, time.Hour
	tests := []struct {
		name string
		revs []tokenwatch.Revocation
		uses []tokenwatch.TokenUse
		cfg  func(*Config)
		want []string
	}{
		// impossible_travel
		{name: "travel/frankfurt-sydney-11min", want: []string{travel},
			uses: []tokenwatch.TokenUse{use(1, 0, frankfurt), use(1, 11*min, sydney)}},
		{name: "travel/london-moscow-1h", want: []string{travel},
			uses: []tokenwatch.TokenUse{use(1, 0, london), use(1, hour, moscow)}},
		{name: "travel/opaque-token", want: []string{travel},
			uses: []tokenwatch.TokenUse{use(1, 0, paris, opaque()), use(1, 2*hour, sydney, opaque())}},
		{name: "travel/unknown-status-counts", want: []string{travel},
			uses: []tokenwatch.TokenUse{use(1, 0, frankfurt, withStatus(0)), use(1, 11*min, sydney, withStatus(0))}},
		{name: "benign/flight-london-newyork-8h", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, london), use(1, 8*hour, newYork), use(1, 8*hour+5*min, newYork)}},
		{name: "benign/flight-frankfurt-sydney-23h", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, frankfurt), use(1, 23*hour, sydney)}},
		{name: "benign/same-asn-far-apart", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, newYork), use(1, 10*min, sanFran)}},
		{name: "benign/corporate-egress-same-country", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, sanFran), use(1, 2*min, ashburnVPN), use(1, 4*min, sanFran)}},
		{name: "benign/vpn-same-country-de", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 3*min, munichCorp), use(1, 6*min, berlinHome)}},
		{name: "benign/travel-rejected-401", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, frankfurt), use(1, 11*min, sydney, withStatus(401))}},
		{name: "benign/private-addresses", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, private10), use(1, 1*min, frankfurt), use(1, 2*min, private192), use(1, 3*min, sydney, withStatus(403))}},
		{name: "benign/cdn-edges-untrusted-xff", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, cfEdgeFRA), use(1, 1*min, cfEdgeSYD), use(1, 2*min, cfEdgeFRA)}},
		{name: "benign/configured-proxy-asn-ignored", want: nil,
			cfg:  func(c *Config) { c.IgnoreASNs = []uint32{1221} },
			uses: []tokenwatch.TokenUse{use(1, 0, frankfurt), use(1, 11*min, sydney)}},
		{name: "travel/disabled", want: nil,
			cfg:  func(c *Config) { c.ImpossibleTravel.Enabled = false },
			uses: []tokenwatch.TokenUse{use(1, 0, frankfurt), use(1, 11*min, sydney)}},
		{name: "travel/same-country-different-client", want: []string{travel},
			uses: []tokenwatch.TokenUse{use(1, 0, sanFran), use(1, 30*min, ashburnVPN, withUA("python-requests/2.32.3"))}},
		{name: "travel/same-country-when-not-ignored", want: []string{travel},
			cfg:  func(c *Config) { c.ImpossibleTravel.IgnoreSameCountry = false },
			uses: []tokenwatch.TokenUse{use(1, 0, sanFran), use(1, 30*min, ashburnVPN)}},

		// concurrent_replay
		{name: "concurrent/two-continents-1min-is-both", want: []string{travel, concurrent},
			uses: []tokenwatch.TokenUse{use(1, 0, frankfurt), use(1, time.Minute, newYork), use(1, 2*time.Minute, frankfurt), use(1, 3*time.Minute, newYork)}},
		{name: "concurrent/two-countries-40s", want: []string{concurrent},
			uses: []tokenwatch.TokenUse{use(1, 0, frankfurt), use(1, 40*time.Second, paris)}},
		{name: "concurrent/browser-and-curl-same-city", want: []string{concurrent},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, time.Minute, berlinLTE, withUA(uaCurl))}},
		{name: "concurrent/interleaved-storm-is-one-alert", want: []string{concurrent},
			uses: []tokenwatch.TokenUse{use(1, 0, frankfurt), use(1, 30*time.Second, paris), use(1, 60*time.Second, frankfurt),
				use(1, 90*time.Second, paris), use(1, 120*time.Second, frankfurt), use(1, 150*time.Second, paris)}},
		{name: "benign/mobile-home-switching-one-metro", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, withUA(uaSafari)), use(1, 1*min, berlinLTE, withUA(uaSafari)),
				use(1, 2*min, berlinHome, withUA(uaSafari)), use(1, 3*min, berlinLTE, withUA(uaSafari))}},
		{name: "benign/border-metro-strasbourg-kehl", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, strasbourg), use(1, 1*min, kehl), use(1, 2*min, strasbourg)}},
		{name: "benign/concurrent-outside-window", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, frankfurt), use(1, 6*min, paris)}},
		{name: "benign/ipv6-privacy-addresses-one-64", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, v6NoASN1), use(1, 10*time.Second, v6NoASN2, withUA(uaCurl))}},
		{name: "benign/ipv6-privacy-same-asn", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, v6Priv1), use(1, 10*time.Second, v6Priv2), use(1, 20*time.Second, v6Priv1)}},
		{name: "benign/dual-stack-one-client", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, v4BerlinVF), use(1, 2*time.Second, v6Berlin), use(1, 4*time.Second, v4BerlinVF)}},
		{name: "benign/same-ip-different-apps", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 5*time.Second, berlinHome, withUA(uaCurl))}},
		{name: "benign/concurrent-one-side-rejected", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, frankfurt), use(1, 40*time.Second, paris, withStatus(401))}},

		// leaked_token_replay and token_leak
		{name: "leak/one-alert-per-token", want: []string{leak},
			uses: []tokenwatch.TokenUse{use(1, 0, place{}, asLeak("billing")), use(1, min, place{}, asLeak("billing")), use(1, 2*min, place{}, asLeak("orders"))}},
		{name: "leak/replay-from-new-network", want: []string{leak, leaked},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 5*hour, place{}, asLeak("billing")), use(1, 6*hour, moscow)}},
		{name: "leak/replay-without-prior-use", want: []string{leak, leaked},
			uses: []tokenwatch.TokenUse{use(1, 0, place{}, asLeak("billing")), use(1, 3*hour, moscow)}},
		{name: "benign/leak-then-owner-keeps-using", want: []string{leak},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 10*min, place{}, asLeak("billing")), use(1, 20*min, berlinHome),
				use(1, 30*min, v6Priv1)}},
		{name: "benign/leak-logged-with-client-ip", want: []string{leak},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, asLeak("billing")), use(1, 5*min, berlinHome)}},
		{name: "benign/leak-then-private-address", want: []string{leak},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 10*min, place{}, asLeak("billing")), use(1, 40*min, private10)}},
		{name: "benign/leak-replay-rejected", want: []string{leak},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 10*min, place{}, asLeak("billing")), use(1, 40*min, moscow, withStatus(401))}},
		{name: "benign/leak-use-within-skew-of-leak", want: []string{leak},
			uses: []tokenwatch.TokenUse{use(1, 0, place{}, asLeak("billing")), use(1, 3*time.Second, berlinHome), use(1, 10*min, berlinHome)}},
		{name: "leak/replay-arrives-before-the-leak-sighting", want: []string{leak, leaked},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 6*hour, moscow), use(1, 5*hour, place{}, asLeak("billing"))}},
		{name: "benign/owner-use-arrives-before-the-leak-sighting", want: []string{leak},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 6*hour, berlinHome), use(1, 5*hour, place{}, asLeak("billing"))}},
		{name: "leak/use-arrives-before-its-leak-sighting", want: []string{leak},
			uses: []tokenwatch.TokenUse{use(1, 10*min, place{}, asLeak("billing")), use(1, 0, berlinHome), use(1, 20*min, berlinHome)}},

		// post_revocation_use
		{name: "revoked/by-fingerprint", want: []string{revokedUse},
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(5 * min), Reason: "logout"}},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 10*min, berlinHome)}},
		{name: "revoked/by-jti-and-issuer", want: []string{revokedUse},
			revs: []tokenwatch.Revocation{{JTI: "j-1", Issuer: "https://idp.example.com", Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, withJTI("https://idp.example.com", "j-1")), use(2, 10*min, berlinHome, withJTI("https://idp.example.com", "j-1"))}},
		{name: "revoked/by-jti-only", want: []string{revokedUse},
			revs: []tokenwatch.Revocation{{JTI: "j-1", Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 10*min, berlinHome, withJTI("https://idp.example.com", "j-1"))}},
		{name: "benign/revoked-other-issuer", want: nil,
			revs: []tokenwatch.Revocation{{JTI: "j-1", Issuer: "https://other.example.org", Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 10*min, berlinHome, withJTI("https://idp.example.com", "j-1"))}},
		{name: "benign/revoked-then-401", want: nil,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 10*min, berlinHome, withStatus(401)), use(1, 11*min, moscow, withStatus(401))}},
		{name: "benign/revoked-use-within-clock-skew", want: nil,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 5*min+4*time.Second, berlinHome)}},
		{name: "benign/use-before-revocation-arriving-late", want: nil,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 2*min, berlinHome)}},

		// expired_token_accepted
		{name: "expired/accepted-2h-after-exp", want: []string{expired},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, withExp(t0.Add(-2*hour)))}},
		{name: "expired/accepted-just-over-leeway", want: []string{expired},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, withExp(t0.Add(-61*time.Second)))}},
		{name: "benign/expired-within-leeway", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, withExp(t0.Add(-30*time.Second)))}},
		{name: "benign/expired-rejected", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, withExp(t0.Add(-2*hour)), withStatus(401)), use(1, min, berlinHome, withExp(t0.Add(-2*hour)), withStatus(403))}},
		{name: "expired/storm-one-alert-per-network", want: []string{expired, expired},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, withExp(t0.Add(-2*hour))), use(1, min, berlinHome, withExp(t0.Add(-2*hour))),
				use(1, 2*min, berlinLTE, withExp(t0.Add(-2*hour))), use(1, 3*min, berlinHome, withExp(t0.Add(-2*hour)))}},

		// alg_none_accepted
		{name: "algnone/accepted", want: []string{algNone},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, withAlgNone()), use(1, time.Second, berlinHome, withAlgNone())}},
		{name: "benign/algnone-rejected", want: nil,
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, withAlgNone(), withStatus(401))}},
		{name: "algnone/disabled", want: nil, cfg: func(c *Config) { c.AlgNoneAccepted.Enabled = false },
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, withAlgNone())}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mods := []func(*Config){}
			if tc.cfg != nil {
				mods = append(mods, tc.cfg)
			}
			e := newTestEngine(t, mods...)
			for _, r := range tc.revs {
				e.Revoke(r, nil)
			}
			got := run(e, tc.uses...)
			if !slices.Equal(types(got), tc.want) {
				for _, a := range got {
					t.Logf("alert: %s", a.Summary)
				}
				t.Fatalf("alerts = %v, want %v", types(got), tc.want)
			}
			for _, a := range got {
				checkAlert(t, &a)
			}
		})
	}
}

// checkAlert checks the alert contract: id, severity, evidence oldest first,
// event time = newest evidence, a one-sentence summary, no raw token.
func checkAlert(t *testing.T, a *tokenwatch.Alert) {
	t.Helper()
	if len(a.ID) != 32 {
		t.Errorf("%s: id %q is not 32 hex digits", a.Type, a.ID)
	}
	if a.Severity != DefaultSeverity[a.Type] {
		t.Errorf("%s: severity %s, want %s", a.Type, a.Severity, DefaultSeverity[a.Type])
	}
	if len(a.Evidence) == 0 {
		t.Fatalf("%s: no evidence", a.Type)
	}
	for i := 1; i < len(a.Evidence); i++ {
		if a.Evidence[i].Time.Before(a.Evidence[i-1].Time) {
			t.Errorf("%s: evidence not oldest first: %v", a.Type, a.Evidence)
		}
	}
	if !a.EventTime.Equal(a.Evidence[len(a.Evidence)-1].Time) {
		t.Errorf("%s: event time %v is not the newest evidence %v", a.Type, a.EventTime, a.Evidence[len(a.Evidence)-1].Time)
	}
	if !a.DetectedAt.Equal(fixedNow) {
		t.Errorf("%s: detected_at %v not from the clock", a.Type, a.DetectedAt)
	}
	if !strings.HasSuffix(a.Summary, ".") || strings.Count(a.Summary, ". ") > 0 || len(a.Summary) < 40 {
		t.Errorf("%s: summary is not one sentence: %q", a.Type, a.Summary)
	}
	if a.Fingerprint == "" || a.Redacted == "" {
		t.Errorf("%s: fingerprint/redacted missing", a.Type)
	}
}

func TestTravelAlertBody(t *testing.T) {
	e := newTestEngine(t)
	got := run(e, use(1, 0, frankfurt), use(1, 11*time.Minute, sydney))
	if len(got) != 1 {
		t.Fatalf("got %d alerts", len(got))
	}
	a := got[0]
	want := "Token eyJhbG…Qssw (sub alice, client web) was used from Frankfurt am Main, DE (AS3320) and 11 minutes later from Sydney, AU (AS1221): 16,453 km apart, 88,404 km/h."
	if a.Summary != want {
		t.Errorf("summary\n got %q\nwant %q", a.Summary, want)
	}
	if a.Subject != "alice" || a.ClientID != "web" || a.Issuer != "https://idp.example.com" || a.Severity != tokenwatch.SeverityHigh {
		t.Errorf("claims/severity wrong: %+v", a)
	}
	if len(a.Evidence) != 2 || a.Evidence[0].City != "Frankfurt am Main" || a.Evidence[1].City != "Sydney" {
		t.Fatalf("evidence = %+v", a.Evidence)
	}
	old := a.Evidence[0]
	if old.IP != "80.187.100.17" || old.ASN != 3320 || old.ASOrg != "Deutsche Telekom AG" || old.Country != "DE" ||
		old.Lat != 50.1109 || old.Lon != 8.6821 || old.UserAgent != uaChrome || old.Status != 200 ||
		old.Service != "api-gateway" || old.Topic != "auth-logs" || old.Partition == nil || *old.Partition != 0 ||
		old.Offset == nil || *old.Offset != 1_000_000 || !old.Time.Equal(t0) {
		t.Errorf("evidence rebuilt from state is wrong: %+v", old)
	}
}

func TestSummaries(t *testing.T) {
	tests := []struct {
		name string
		revs []tokenwatch.Revocation
		uses []tokenwatch.TokenUse
		want string
	}{
		{name: "concurrent", uses: []tokenwatch.TokenUse{use(1, 0, frankfurt), use(1, 40*time.Second, paris)},
			want: "Token eyJhbG…Qssw (sub alice, client web) was used from Frankfurt am Main, DE (AS3320) and from Paris, FR (AS3215) within 40 seconds: two countries on two networks cannot be one client."},
		{name: "concurrent-clients", uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, time.Minute, berlinLTE, withUA(uaCurl))},
			want: "Token eyJhbG…Qssw (sub alice, client web) was used from Berlin, DE (AS3320) and from Berlin, DE (AS3209) within 1 minute: two different clients (Chrome and curl) on two networks cannot be one client."},
		{name: "leaked", uses: []tokenwatch.TokenUse{use(1, 0, place{}, asLeak("billing")), use(1, 3*time.Hour, moscow)},
			want: "Token eyJhbG…Qssw (sub alice, client web), leaked in the billing log at 2026-11-24 09:00:00 UTC, was used 3 hours later from Moscow, RU (AS12389), a network that had not used it before the leak."},
		{name: "revoked", revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0, Reason: "logout"}},
			uses: []tokenwatch.TokenUse{use(1, 5*time.Minute, paris)},
			want: "Token eyJhbG…Qssw (sub alice, client web) was accepted (HTTP 200) by api-gateway from Paris, FR (AS3215) 5 minutes after it was revoked (logout)."},
		{name: "expired", uses: []tokenwatch.TokenUse{use(1, 0, paris, withExp(t0.Add(-2*time.Hour-5*time.Minute)))},
			want: "Token eyJhbG…Qssw (sub alice, client web) was accepted (HTTP 200) by api-gateway from Paris, FR (AS3215) 2 hours 5 minutes after it expired at 2026-11-24 06:55:00 UTC."},
		{name: "algnone", uses: []tokenwatch.TokenUse{use(1, 0, private10, withAlgNone())},
			want: "Unsigned JWT eyJhbG…Qssw (sub alice, client web) with alg \"none\" was accepted (HTTP 200) by api-gateway from 10.1.2.3."},
		{name: "leak-file", uses: []tokenwatch.TokenUse{use(1, 0, place{}, opaque(), asLeak("billing"), fromFile("/var/log/billing.log", 42))},
			want: "Token tw_abc…9f3e, a bearer, was written to the billing log (/var/log/billing.log line 42)."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(t)
			for _, r := range tc.revs {
				e.Revoke(r, nil)
			}
			got := run(e, tc.uses...)
			if len(got) == 0 {
				t.Fatal("no alert")
			}
			if s := got[len(got)-1].Summary; s != tc.want {
				t.Errorf("summary\n got %q\nwant %q", s, tc.want)
			}
		})
	}
}

// TestLateRevocation: a revocation read after the uses it covers raises
// post_revocation_use for the kept 2xx uses after it, with the id, event time,
// fingerprint and evidence the in-order path (revocation read first) gives.
func TestLateRevocation(t *testing.T) {
	iss := "https://idp.example.com"
	min, hour := time.Minute, time.Hour
	tests := []struct {
		name string
		revs []tokenwatch.Revocation
		uses []tokenwatch.TokenUse
		want int // post_revocation_use alerts, in order and late alike
	}{
		{name: "by-fingerprint", want: 1,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(5 * min), Reason: "logout"}},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 10*min, paris)}},
		{name: "by-jti-and-issuer", want: 1,
			revs: []tokenwatch.Revocation{{JTI: "j-1", Issuer: iss, Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome, withJTI(iss, "j-1")), use(1, 10*min, paris, withJTI(iss, "j-1"))}},
		{name: "opaque-token", want: 1,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(3), Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(3, 6*min, paris, opaque())}},
		{name: "same-client-before-and-after", want: 1,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 10*min, berlinHome)}},
		{name: "two-networks-after", want: 2,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 10*min, paris), use(1, 3*hour, moscow)}},
		{name: "benign/uses-before-revocation", want: 0,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 2*min, paris)}},
		{name: "benign/rejected-after", want: 0,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 0, berlinHome), use(1, 10*min, paris, withStatus(401))}},
		{name: "benign/within-clock-skew", want: 0,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 5*min+4*time.Second, paris)}},
		{name: "benign/leak-sighting-after", want: 0,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 10*min, place{}, asLeak("billing"))}},
		{name: "benign/other-token", want: 0,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(2), Time: t0.Add(5 * min)}},
			uses: []tokenwatch.TokenUse{use(1, 10*min, paris)}},
		{name: "benign/past-ttl", want: 0,
			revs: []tokenwatch.Revocation{{Fingerprint: fp(1), Time: t0.Add(-800 * hour)}},
			uses: []tokenwatch.TokenUse{use(1, 0, paris)}},
	}
	revoked := func(as []tokenwatch.Alert) []tokenwatch.Alert {
		var out []tokenwatch.Alert
		for _, a := range as {
			if a.Type == revokedUse {
				out = append(out, a)
			}
		}
		return out
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inOrder := newTestEngine(t)
			for _, r := range tc.revs {
				if got := inOrder.Revoke(r, nil); len(got) != 0 {
					t.Fatalf("a revocation of an unseen token raised %d alerts", len(got))
				}
			}
			want := revoked(run(inOrder, tc.uses...))

			// The late engine is restored from snapshots of one that saw the
			// uses (as after a restart): the token's identity survives.
			seen := newTestEngine(t)
			_ = run(seen, tc.uses...)
			late := newTestEngine(t)
			for i := range tc.uses {
				if snap, ok := seen.Snapshot(nil, KeyOf(&tc.uses[i])); ok {
					if err := late.Restore(snap); err != nil {
						t.Fatal(err)
					}
				}
			}
			var got []tokenwatch.Alert
			for _, r := range tc.revs {
				got = late.Revoke(r, got)
			}
			if len(got) != tc.want || len(want) != tc.want {
				t.Fatalf("late revocation raised %d alerts, in order %d, want %d", len(got), len(want), tc.want)
			}
			for i := range got {
				g, w := got[i], want[i]
				// The redacted preview is not kept per token: the late alert
				// names the token by its fingerprint.
				if g.Redacted != "" {
					t.Errorf("late alert has a redacted preview %q", g.Redacted)
				}
				c := g
				c.Redacted = w.Redacted
				checkAlert(t, &c)
				if g.ID != w.ID || !g.EventTime.Equal(w.EventTime) || g.Fingerprint != w.Fingerprint || g.Service != w.Service {
					t.Errorf("late alert %d differs from the in-order one:\n got %s %v %s %s\nwant %s %v %s %s",
						i, g.ID, g.EventTime, g.Fingerprint, g.Service, w.ID, w.EventTime, w.Fingerprint, w.Service)
				}
				ge, we := g.Evidence[0], w.Evidence[len(w.Evidence)-1]
				if ge.IP != we.IP || ge.ASN != we.ASN || ge.Status != we.Status || ge.Topic != we.Topic || *ge.Offset != *we.Offset {
					t.Errorf("late evidence %+v, in order %+v", ge, we)
				}
				if !strings.Contains(g.Summary, "after it was revoked") {
					t.Errorf("summary %q", g.Summary)
				}
			}
			// Read again (a duplicate event, a replay): nothing new.
			for _, r := range tc.revs {
				if again := late.Revoke(r, nil); len(again) != 0 {
					t.Errorf("the same revocation read twice raised %d more alerts", len(again))
				}
			}
		})
	}
}
