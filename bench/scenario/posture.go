package scenario

import (
	"fmt"
	"time"

	"github.com/tokenwatch/tokenwatch/policy"
)

// PolicyYAML is the policy file written beside the logs: it makes the planted
// posture cases violations and keeps ordinary traffic clean.
const PolicyYAML = `# tokenwatch policy for the generated scenario (see docs/policy.md)
defaults:
  max_lifetime: 1h
clients:
  - client_id: "web-portal"
    allowed_scopes: ["orders:read", "profile:read"]
  - client_id: "mobile-app"
    allowed_scopes: ["orders:*", "profile:*"]
  - client_id: "reporting-tool"
    allowed_scopes: ["reports:*", "orders:read"]
  - client_id: "partner-app"
    allowed_scopes: ["orders:*", "profile:*"]
  - client_id: "bank-app"
    sender_constrained: true
  - client_id: "ci-*"
    workload: true
    max_lifetime: 4h
    networks: ["35.190.0.0/16"]
    asns: [15169]
services:
  - service: "api-gateway"
    audiences: ["https://api.example.com"]
  - service: "edge-proxy"
    audiences: ["https://api.example.com"]
  - service: "billing-api"
    audiences: ["https://billing.example.com"]
windows:
  scope_escalation: 24h
  refresh_reuse: 24h
  dispensary: 10m
dispensary_min_subjects: 5
`

func (g *gen) posturecase(typ, fp, client, service string, also ...string) {
	g.truth.Posture = append(g.truth.Posture, PostureCase{ID: fmt.Sprintf("%s-%d", typ, len(g.truth.Posture)+1), Type: typ, Fingerprint: fp, ClientID: client, Service: service, Also: also})
}

// postureClients plants the client-level cases once: lifetime and scope
// findings are reported once per client and day, not per token.
func (g *gen) postureClients() {
	// legacy-client issues 8 h and 12 h tokens (the leak-replay incidents and
	// the long-flight trap use them).
	g.posturecase(policy.TypeLifetime, "", "legacy-client", "")
	g.posturecase(policy.TypeScope, "", "reporting-tool", "")
}

func (g *gen) claims(sub, client string, iat time.Time, life time.Duration, scope string) claims {
	g.seq++
	return claims{Iss: Issuer, Sub: sub, Aud: "https://api.example.com", Iat: iat.Unix(), Exp: iat.Add(life).Unix(),
		Jti: fmt.Sprintf("jti-%d-%06d", g.cfg.Seed, g.seq), ClientID: client, Scope: scope}
}

func (g *gen) posture(i int) {
	lon := g.net("London/2856")
	// scope_policy_violation: a reporting tool holding admin scope.
	{
		t0 := g.at(i, 17)
		tok := makeJWT(g.r, "RS256", g.claims(fmt.Sprintf("report-%d", i), "reporting-tool", t0.Add(-time.Minute), time.Hour, "reports:read admin:all"))
		g.use(t0, lon.addr(uint32(140+i)), uaPython, tok, 200)
	}
	// scope_escalation: the same subject's next token carries more scopes.
	{
		t0 := g.at(i, 18)
		sub := fmt.Sprintf("esc-%d", i)
		a := makeJWT(g.r, "RS256", g.claims(sub, "partner-app", t0.Add(-time.Minute), time.Hour, "orders:read"))
		b := makeJWT(g.r, "RS256", g.claims(sub, "partner-app", t0.Add(29*time.Minute), time.Hour, "orders:read orders:write profile:write"))
		g.use(t0, lon.addr(uint32(150+i)), uaChrome, a, 200)
		g.use(t0.Add(30*time.Minute), lon.addr(uint32(150+i)), uaChrome, b, 200)
		g.posturecase(policy.TypeScopeEscalation, g.fp(b), "", "")
	}
	// audience_mismatch: an API token presented to the billing service.
	{
		t0 := g.at(i, 19)
		tok, _ := g.jwt(fmt.Sprintf("aud-%d", i), "web-portal", t0.Add(-time.Minute), time.Hour, "RS256")
		g.auth = append(g.auth, event{t: t0, via: "nginx", ip: lon.addr(uint32(160 + i)), method: "GET", path: "/billing/v1/invoices", status: 200, ua: uaChrome, token: tok, service: "billing-api"})
		g.posturecase(policy.TypeAudienceMismatch, g.fp(tok), "", "")
	}
	// id_token_as_access_token: the SPA sends its ID token to the API.
	{
		t0 := g.at(i, 20)
		c := g.claims(fmt.Sprintf("spa-user-%d", i), "", t0.Add(-time.Minute), time.Hour, "")
		c.Aud, c.Azp, c.Nonce, c.AtHash = "web-portal", "web-portal", opaque(g.r, 22), opaque(g.r, 22)
		tok := makeJWT(g.r, "RS256", c)
		g.use(t0, lon.addr(uint32(170+i)), uaFirefox, tok, 200)
		g.posturecase(policy.TypeIDTokenAsAccess, g.fp(tok), "", "")
	}
	// bound_token_as_bearer: a DPoP-bound token sent with the Bearer scheme.
	{
		t0 := g.at(i, 21)
		c := g.claims(fmt.Sprintf("bank-%d", i), "bank-app", t0.Add(-time.Minute), time.Hour, "accounts:read")
		c.Cnf = &cnf{JKT: opaque(g.r, 43)}
		tok := makeJWT(g.r, "ES256", c)
		g.use(t0, lon.addr(uint32(180+i)), uaSafari, tok, 200)
		g.posturecase(policy.TypeBoundAsBearer, g.fp(tok), "", "")
	}
	// sender_constraint_missing: the bank app's token carries no cnf at all.
	{
		t0 := g.at(i, 22)
		tok := makeJWT(g.r, "ES256", g.claims(fmt.Sprintf("bank-plain-%d", i), "bank-app", t0.Add(-time.Minute), time.Hour, "accounts:read"))
		g.use(t0, lon.addr(uint32(190+i)), uaSafari, tok, 200)
		g.posturecase(policy.TypeSenderConstraint, g.fp(tok), "", "")
	}
	// refresh_token_in_transit_log: a token request body dumped by a service.
	{
		t0 := g.at(i, 23)
		rt := "rt_" + opaque(g.r, 40)
		ts := t0.Format("2006-01-02T15:04:05.000Z")
		g.app = append(g.app, appLine{t0, fmt.Sprintf(`%s DEBUG [mobile-bff] o.s.web.client.RestTemplate - POST https://idp.example.com/oauth/token body=grant_type=refresh_token&refresh_token=%s&client_id=mobile-app`, ts, rt)})
		g.incident("token_leak", rt, t0)
		g.posturecase(policy.TypeRefreshInLog, g.fp(rt), "", "")
	}
	// refresh_token_reuse: one refresh token redeemed from two networks.
	{
		t0 := g.at(i, 24)
		rt := "rt_" + opaque(g.r, 40)
		vm := g.net("London/5089")
		for k, ip := range []string{lon.addr(uint32(200 + i)), vm.addr(uint32(200 + i))} {
			g.auth = append(g.auth, event{t: t0.Add(time.Duration(k*30) * time.Minute), via: "nginx", ip: ip, method: "GET", path: "/oauth/token", query: "?grant_type=refresh_token&refresh_token=" + rt + "&client_id=mobile-app", status: 200, ua: uaAndroid, scheme: "-", service: "api-gateway"})
		}
		g.posturecase(policy.TypeRefreshReuse, g.fp(rt), "", "", policy.TypeRefreshInLog)
	}
	// token_dispensary: an auth service echoing tokens of many users in error responses.
	{
		t0 := g.at(i, 25)
		svc := "legacy-auth"
		for k := range 6 {
			t := t0.Add(time.Duration(k*40) * time.Second)
			tok, _ := g.jwt(fmt.Sprintf("disp-%d-%d", i, k), "web-portal", t.Add(-time.Minute), time.Hour, "RS256")
			g.app = append(g.app, appLine{t, fmt.Sprintf(`{"ts":"%s","level":"error","service":"%s","path":"/v1/session/refresh","msg":"token validation failed","response":{"error":"invalid_grant","access_token":"%s"}}`, t.Format("2006-01-02T15:04:05.000Z"), svc, tok)})
			g.incident("token_leak", tok, t)
		}
		if i == 0 {
			g.posturecase(policy.TypeDispensary, "", "", svc)
		}
	}
	// workload_token_off_network: a CI token used outside its cloud network.
	{
		t0 := g.at(i, 26)
		tok, _ := g.jwt(fmt.Sprintf("ci-%d", i), "ci-deployer", t0.Add(-time.Minute), 4*time.Hour, "RS256")
		gcp, ny := g.net("Council Bluffs/15169"), g.net("New York/7922")
		for k := range 6 {
			g.use(t0.Add(time.Duration(k*10)*time.Minute), gcp.addr(uint32(210+i)), uaGo, tok, 200)
		}
		g.use(t0.Add(3*time.Hour), ny.addr(uint32(210+i)), uaGo, tok, 200)
		g.posturecase(policy.TypeWorkloadOffNetwork, g.fp(tok), "", "")
	}
}
