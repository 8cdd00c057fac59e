package parse

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// ref is the ingest time of every test: year-less dates resolve against it.
var ref = time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)

func newTestParser(t testing.TB, cfg Config) *Parser {
	t.Helper()
	p, err := New(cfg, WithClock(func() time.Time { return ref }))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// want is an expected Fields with the time written as RFC 3339 and the IP as text.
type want struct {
	Format, Time, IP, UA, User, Method, Path string
	Status                                   int
	Service, Host                            string
	DPoP, Headers                            bool
	Flags                                    tokenwatch.RecordFlags
}

func (w want) check(t *testing.T, r *tokenwatch.Record) {
	t.Helper()
	f := r.Fields
	var errs []string
	cmp := func(name, got, want string) {
		if got != want {
			errs = append(errs, fmt.Sprintf("%s = %q, want %q", name, got, want))
		}
	}
	cmp("Format", f.Format, w.Format)
	if w.Time == "" {
		if !f.Time.IsZero() {
			errs = append(errs, fmt.Sprintf("Time = %v, want zero", f.Time))
		}
	} else {
		wt, err := time.Parse(time.RFC3339Nano, w.Time)
		if err != nil {
			t.Fatalf("bad want time %q", w.Time)
		}
		if !f.Time.Equal(wt) {
			errs = append(errs, fmt.Sprintf("Time = %v, want %v", f.Time.UTC(), wt.UTC()))
		}
	}
	ip := ""
	if f.IP.IsValid() {
		ip = f.IP.String()
	}
	cmp("IP", ip, w.IP)
	cmp("UserAgent", f.UserAgent, w.UA)
	cmp("User", f.User, w.User)
	cmp("Method", f.Method, w.Method)
	cmp("Path", f.Path, w.Path)
	if f.Status != w.Status {
		errs = append(errs, fmt.Sprintf("Status = %d, want %d", f.Status, w.Status))
	}
	cmp("Service", f.Service, w.Service)
	cmp("Host", f.Host, w.Host)
	if f.DPoPProof != w.DPoP || f.HeadersLogged != w.Headers {
		errs = append(errs, fmt.Sprintf("DPoPProof, HeadersLogged = %v, %v, want %v, %v", f.DPoPProof, f.HeadersLogged, w.DPoP, w.Headers))
	}
	if r.Flags != w.Flags {
		errs = append(errs, fmt.Sprintf("Flags = %b, want %b", r.Flags, w.Flags))
	}
	if !r.Parsed {
		errs = append(errs, "Parsed = false")
	}
	if len(errs) > 0 {
		t.Errorf("record %.200q:\n  %s", r.Raw, strings.Join(errs, "\n  "))
	}
}

func TestParseFormats(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	tests := []struct {
		name string
		line string
		want want
	}{
		// ---- JSON dialects ----
		{"json/nginx escape=json", `{"time_local":"25/Nov/2026:08:14:06 +0100","remote_addr":"10.1.2.3","remote_user":"","request":"GET /api/orders?access_token=x HTTP/1.1","status":"401","body_bytes_sent":"0","http_referer":"","http_user_agent":"curl/8.5.0","http_x_forwarded_for":"203.0.113.9, 10.1.0.1","http_dpop":"","host":"api.example.com"}`,
			want{Format: "nginx_json", Time: "2026-11-25T07:14:06Z", IP: "203.0.113.9", UA: "curl/8.5.0", Method: "GET", Path: "/api/orders", Status: 401, Host: "api.example.com", Headers: true}},
		{"json/nginx untrusted peer ignores xff", `{"time_iso8601":"2026-11-25T08:14:06+00:00","remote_addr":"198.51.100.20","http_x_forwarded_for":"1.2.3.4","request_method":"POST","request_uri":"/oauth/token","status":200,"http_user_agent":"okhttp/4.12.0","http_dpop":"eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln"}`,
			want{Format: "nginx_json", Time: "2026-11-25T08:14:06Z", IP: "198.51.100.20", UA: "okhttp/4.12.0", Method: "POST", Path: "/oauth/token", Status: 200, DPoP: true, Headers: true}},
		{"json/ecs nested", `{"@timestamp":"2026-11-25T08:14:06.123Z","ecs":{"version":"8.11.0"},"source":{"ip":"2001:db8::7"},"user_agent":{"original":"Mozilla/5.0 (X11; Linux x86_64)"},"http":{"request":{"method":"get"},"response":{"status_code":403}},"url":{"path":"/admin","original":"/admin?x=1","domain":"admin.example.com"},"service":{"name":"admin-gw"},"user":{"name":"alice"},"host":{"name":"node-7"}}`,
			want{Format: "ecs", Time: "2026-11-25T08:14:06.123Z", IP: "2001:db8::7", UA: "Mozilla/5.0 (X11; Linux x86_64)", User: "alice", Method: "GET", Path: "/admin", Status: 403, Service: "admin-gw", Host: "admin.example.com"}},
		{"json/ecs flattened keys", `{"@timestamp":"2026-11-25T08:14:06Z","source.ip":"203.0.113.50","client.ip":"203.0.113.51","user_agent.original":"curl/8","http.request.method":"DELETE","url.original":"https://api.example.com/v1/users/7?force=1","http.response.status_code":204,"service.name":"users","user.name":"svc-ci"}`,
			want{Format: "ecs", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.50", UA: "curl/8", User: "svc-ci", Method: "DELETE", Path: "/v1/users/7", Status: 204, Service: "users", Host: "api.example.com"}},
		{"json/envoy", `{"start_time":"2026-11-25T08:14:06.318Z","method":"GET","path":"/api/v1/profile?fields=all","protocol":"HTTP/2","response_code":200,"response_flags":"-","bytes_received":0,"bytes_sent":512,"duration":12,"x_forwarded_for":"203.0.113.9,10.0.0.8","user_agent":"Mozilla/5.0","request_id":"5d1c","authority":"api.example.com:443","upstream_host":"10.0.2.1:8080","upstream_cluster":"profile","downstream_remote_address":"10.0.0.8:51234","dpop":"-"}`,
			want{Format: "envoy_json", Time: "2026-11-25T08:14:06.318Z", IP: "203.0.113.9", UA: "Mozilla/5.0", Method: "GET", Path: "/api/v1/profile", Status: 200, Service: "profile", Host: "api.example.com", Headers: true}},
		{"json/envoy ipv6 peer with port", `{"start_time":"2026-11-25T08:14:06Z","method":"POST","path":"/t","response_code":"201","downstream_remote_address":"[2001:db8::1]:443","upstream_cluster":"t"}`,
			want{Format: "envoy_json", Time: "2026-11-25T08:14:06Z", IP: "2001:db8::1", Method: "POST", Path: "/t", Status: 201, Service: "t"}},
		{"json/okta system log", `{"actor":{"id":"00u1","type":"User","alternateId":"alice@example.com","displayName":"Alice"},"client":{"userAgent":{"rawUserAgent":"Mozilla/5.0 (Macintosh)","os":"Mac OS X","browser":"SAFARI"},"zone":"null","device":"Computer","ipAddress":"198.51.100.77"},"eventType":"user.session.start","outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"},"published":"2026-11-25T08:14:06.412Z","request":{"ipChain":[{"ip":"198.51.100.77","version":"V4"}]},"debugContext":{"debugData":{"requestUri":"/api/v1/authn?x=1"}},"uuid":"a1b2","version":"0"}`,
			want{Format: "okta", Time: "2026-11-25T08:14:06.412Z", IP: "198.51.100.77", UA: "Mozilla/5.0 (Macintosh)", User: "alice@example.com", Path: "/api/v1/authn", Status: 401, Service: "okta"}},
		{"json/auth0 event", `{"date":"2026-11-25T08:14:06.123Z","type":"seacft","description":"Authorization Code for Access Token","connection_id":"","client_id":"AaiyAPdpYdesoKnqjj8HJqRn4T5titww","client_name":"My App","ip":"203.0.113.4","user_agent":"Chrome 120.0.0 / Mac OS X 10.15.7","hostname":"tenant.eu.auth0.com","user_id":"auth0|5f7c8ec7c33c6c004bbafe82","user_name":"alice@example.com","log_id":"90020231125081406123000000000000001223372036854775807"}`,
			want{Format: "auth0", Time: "2026-11-25T08:14:06.123Z", IP: "203.0.113.4", UA: "Chrome 120.0.0 / Mac OS X 10.15.7", User: "alice@example.com", Status: 200, Service: "auth0", Host: "tenant.eu.auth0.com"}},
		{"json/auth0 log stream wrapper", `{"log_id":"900","data":{"date":"2026-11-25T08:14:06Z","type":"fapi","ip":"203.0.113.5","user_id":"auth0|1","hostname":"t.auth0.com","details":{"request":{"method":"patch","path":"/api/v2/users/1"},"response":{"statusCode":403}}}}`,
			want{Format: "auth0", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.5", User: "auth0|1", Method: "PATCH", Path: "/api/v2/users/1", Status: 403, Service: "auth0", Host: "t.auth0.com"}},
		{"json/caddy", `{"level":"info","ts":1795594446.5241024,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"10.0.0.3","remote_port":"51234","client_ip":"203.0.113.9","proto":"HTTP/2.0","method":"GET","host":"api.example.com","uri":"/v1/me?x=1","headers":{"User-Agent":["curl/8.5.0"],"Dpop":["eyJhbGciOiJFUzI1NiJ9.e30.sig"]}},"user_id":"","duration":0.0012,"size":12,"status":200,"resp_headers":{"Server":["Caddy"]}}`,
			want{Format: "caddy", Time: "2026-11-25T08:14:06.5241024Z", IP: "203.0.113.9", UA: "curl/8.5.0", Method: "GET", Path: "/v1/me", Status: 200, Host: "api.example.com", DPoP: true, Headers: true}},
		{"json/generic request headers", `{"time":"2026-11-25T09:14:06+01:00","level":"info","ip":"192.0.2.10","request":{"method":"POST","path":"/payments","headers":{"Authorization":"Bearer x","User_Agent":"svc/1.0","X-Forwarded-For":"198.51.100.1"}},"response":{"status":201,"headers":{"dpop-nonce":"n"}},"service":"payments","user":"svc-pay"}`,
			want{Format: "json", Time: "2026-11-25T08:14:06Z", IP: "192.0.2.10", UA: "svc/1.0", User: "svc-pay", Method: "POST", Path: "/payments", Status: 201, Service: "payments", Headers: true}},
		{"json/xff header values as an array are walked as one list", `{"remote_addr":"10.0.0.1","headers":{"X-Forwarded-For":["6.6.6.6","203.0.113.30, 10.0.0.9"]}}`,
			want{Format: "nginx_json", IP: "203.0.113.30", Headers: true}},
		{"json/xff key as an array", `{"remote_addr":"10.0.0.1","x_forwarded_for":["198.51.100.9", "203.0.113.31"]}`,
			want{Format: "nginx_json", IP: "203.0.113.31"}},
		{"json/pino http", `{"level":30,"time":1795594446123,"pid":7,"hostname":"api-1","req":{"id":1,"method":"GET","url":"/users?id=1","headers":{"host":"api.example.com","user-agent":"node-fetch"},"remoteAddress":"::ffff:203.0.113.7","remotePort":52000},"res":{"statusCode":200},"responseTime":3,"msg":"request completed"}`,
			want{Format: "json", Time: "2026-11-25T08:14:06.123Z", IP: "203.0.113.7", UA: "node-fetch", Method: "GET", Path: "/users", Status: 200, Host: "api.example.com", Headers: true}},
		{"json/docker wrapper with combined line", `{"log":"203.0.113.9 - - [25/Nov/2026:08:14:06 +0000] \"GET /health?k=v HTTP/1.1\" 200 2 \"-\" \"kube-probe/1.29\"\n","stream":"stdout","time":"2026-11-25T08:14:06.999Z"}`,
			want{Format: "json", Time: "2026-11-25T08:14:06.999Z", IP: "203.0.113.9", UA: "kube-probe/1.29", Method: "GET", Path: "/health", Status: 200}},
		{"json/epoch string seconds", `{"ts":"1795594446.25","client_ip":"203.0.113.1","status":"200","method":"get","url":"/x"}`,
			want{Format: "json", Time: "2026-11-25T08:14:06.25Z", IP: "203.0.113.1", Method: "GET", Path: "/x", Status: 200}},
		{"json/null and false values are absent", `{"ip":null,"client_ip":"203.0.113.4","user":false,"username":"eve","dpop":null}`,
			want{Format: "json", IP: "203.0.113.4", User: "eve", Headers: true}},
		{"json/dpop true", `{"ip":"203.0.113.4","dpop":true}`,
			want{Format: "json", IP: "203.0.113.4", DPoP: true, Headers: true}},
		{"json/unicode escapes", `{"time":"2026-11-25T08:14:06Z","user":"J\u00fcrgen \ud83d\ude00","user_agent":"a\"b\\c","ip":"203.0.113.1"}`,
			want{Format: "json", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.1", UA: `a"b\c`, User: "Jürgen 😀"}},

		// ---- combined / common ----
		{"combined", `203.0.113.9 - bob [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?x=1 HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"`,
			want{Format: "combined", Time: "2000-10-10T20:55:36Z", IP: "203.0.113.9", UA: "Mozilla/4.08 [en] (Win98; I ;Nav)", User: "bob", Method: "GET", Path: "/apache_pb.gif", Status: 200}},
		{"common", `127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`,
			want{Format: "common", Time: "2000-10-10T20:55:36Z", IP: "127.0.0.1", User: "frank", Method: "GET", Path: "/apache_pb.gif", Status: 200}},
		{"combined/nginx main with xff", `10.0.0.5 - - [25/Nov/2026:08:14:06 +0000] "POST /oauth/token HTTP/1.1" 400 83 "-" "python-requests/2.31.0" "198.51.100.23, 10.0.0.4"`,
			want{Format: "combined", Time: "2026-11-25T08:14:06Z", IP: "198.51.100.23", UA: "python-requests/2.31.0", Method: "POST", Path: "/oauth/token", Status: 400}},
		{"combined/vhost prefix", `api.example.com:443 203.0.113.9 - - [25/Nov/2026:08:14:06 +0000] "GET /v1/items HTTP/2.0" 200 512 "-" "curl/8"`,
			want{Format: "combined", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.9", UA: "curl/8", Method: "GET", Path: "/v1/items", Status: 200, Host: "api.example.com"}},
		{"combined/escaped quote in ua", `2001:db8::5 - - [25/Nov/2026:08:14:06 +0000] "GET / HTTP/1.1" 404 0 "-" "evil \"agent\""`,
			want{Format: "combined", Time: "2026-11-25T08:14:06Z", IP: "2001:db8::5", UA: `evil "agent"`, Method: "GET", Path: "/", Status: 404}},
		{"combined/tls garbage request", `203.0.113.9 - - [25/Nov/2026:08:14:06 +0000] "\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03" 400 157 "-" "-"`,
			want{Format: "combined", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.9", Status: 400}},

		// ---- IIS ----
		{"iis default fields", `2026-11-25 08:14:06 10.0.0.5 GET /api/orders id=7 443 CONTOSO\bob 203.0.113.9 Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) https://app.example.com/ 200 0 0 15`,
			want{Format: "iis", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.9", UA: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", User: `CONTOSO\bob`, Method: "GET", Path: "/api/orders", Status: 200}},

		// ---- Envoy text ----
		{"envoy classic", `[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80"`,
			want{Format: "envoy", Time: "2016-04-15T20:17:00.31Z", IP: "10.0.35.28", UA: "nsq2http", Method: "POST", Path: "/api/v1/locations", Status: 204, Host: "locations"}},
		{"envoy current", `[2026-11-25T08:14:06.318Z] "GET /api/v1/me?x=1 HTTP/1.1" 200 - via_upstream - "-" 0 512 12 11 "203.0.113.9,10.0.0.8" "curl/8.5.0" "5d1c5b1e-1111-2222-3333-444455556666" "api.example.com" "10.0.2.1:8080" outbound|8080||me.default.svc.cluster.local 10.0.1.1:43210 10.0.0.9:8080 10.0.0.8:51234 - default`,
			want{Format: "envoy", Time: "2026-11-25T08:14:06.318Z", IP: "203.0.113.9", UA: "curl/8.5.0", Method: "GET", Path: "/api/v1/me", Status: 200, Service: "outbound|8080||me.default.svc.cluster.local", Host: "api.example.com"}},

		// ---- logfmt ----
		{"logfmt", `ts=2026-11-25T08:14:06.5Z level=info ip=198.51.100.1 ua="Mozilla/5.0 (X11)" status=200 method=GET path=/x?y=1 service=api user=bob dpop=eyJ.e30.sig`,
			want{Format: "logfmt", Time: "2026-11-25T08:14:06.5Z", IP: "198.51.100.1", UA: "Mozilla/5.0 (X11)", User: "bob", Method: "GET", Path: "/x", Status: 200, Service: "api", DPoP: true, Headers: true}},
		{"logfmt/go-kit with xff", `ts=1795594446 caller=handler.go:42 remote_addr=10.0.0.2:5050 x_forwarded_for="203.0.113.77" msg="GET /token 401"`,
			want{Format: "logfmt", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.77", Method: "GET", Path: "/token", Status: 0}},

		// ---- syslog ----
		{"syslog 5424 + logfmt", `<165>1 2026-11-25T08:14:06.003Z gw-1.example.com apigw 4711 ID47 [exampleSDID@32473 iut="3" eventSource="App\]x"] ip=203.0.113.1 method=GET path=/a`,
			want{Format: "syslog+logfmt", Time: "2026-11-25T08:14:06.003Z", IP: "203.0.113.1", Method: "GET", Path: "/a", Service: "apigw", Host: "gw-1.example.com"}},
		{"syslog 5424 nil values + json", `<14>1 - - - - - - {"time":"2026-11-25T08:14:06Z","ip":"203.0.113.2"}`,
			want{Format: "syslog+json", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.2"}},
		{"syslog 3164 + combined", `<190>Nov 25 08:14:07 web-1 nginx: 203.0.113.9 - - [25/Nov/2026:08:14:06 +0000] "GET /p HTTP/1.1" 200 1 "-" "UA/1"`,
			want{Format: "syslog+combined", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.9", UA: "UA/1", Method: "GET", Path: "/p", Status: 200, Service: "nginx", Host: "web-1"}},
		{"syslog 3164 file line, year-less date", `Nov 24 23:59:59 host-2 sshd[1234]: Accepted publickey for deploy from 198.51.100.9 port 52222 ssh2`,
			want{Format: "syslog", Time: "2026-11-24T23:59:59Z", IP: "198.51.100.9", Service: "sshd", Host: "host-2"}},
		{"syslog rsyslog iso without pri", `2026-11-25T08:14:06.123456+00:00 app-3 billing[88]: charge failed for 192.0.2.55`,
			want{Format: "syslog", Time: "2026-11-25T08:14:06.123456Z", IP: "192.0.2.55", Service: "billing", Host: "app-3"}},

		// ---- CRI ----
		{"cri + json", `2026-11-25T08:14:06.123456789Z stdout F {"level":"info","msg":"call","client_ip":"203.0.113.8","path":"/v1/x?t=1","method":"PUT"}`,
			want{Format: "json", Time: "2026-11-25T08:14:06.123456789Z", IP: "203.0.113.8", Method: "PUT", Path: "/v1/x"}},

		// ---- plain ----
		{"plain app log", `2026-11-25 08:14:06,123 ERROR [main] c.e.Auth - request from 192.0.2.4 failed: GET /login?token=abc`,
			want{Format: "plain", Time: "2026-11-25T08:14:06.123Z", IP: "192.0.2.4", Method: "GET", Path: "/login"}},
		{"plain bracketed time and ipv6", `[2026-11-25T08:14:06Z] INFO refreshing session for [2001:db8::9]:443`,
			want{Format: "plain", Time: "2026-11-25T08:14:06Z", IP: "2001:db8::9"}},
		{"plain apache error log", `[Wed Nov 25 08:14:06.123456 2026] [auth_openidc:error] [pid 7] [client 203.0.113.3:5100] oidc_proto_validate: token expired`,
			want{Format: "plain", Time: "2026-11-25T08:14:06.123456Z", IP: "203.0.113.3"}},
		{"plain quoted request with status", `access: client=unknown "POST /api/v2/login HTTP/1.1" 302 via edge`,
			want{Format: "plain", Method: "POST", Path: "/api/v2/login", Status: 302}},
		{"plain timestamp + level + json", `2026-11-25T08:14:06Z INFO {"ip":"203.0.113.66","path":"/q"}`,
			want{Format: "json", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.66", Path: "/q"}},
		{"plain klog", `I1125 08:14:06.123456   12 authentication.go:73] "Unable to authenticate the request" err="invalid bearer token" peer="[2001:db8::4]:55312"`,
			want{Format: "plain", Time: "2026-11-25T08:14:06.123456Z", IP: "2001:db8::4"}},
		{"plain nothing", `token refreshed`, want{Format: "plain"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tokenwatch.Record{Raw: []byte(tc.line)}
			p.Parse(&r)
			tc.want.check(t, &r)
		})
	}
}

func TestParseMappingOverrides(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Fields = FieldMap{IP: "req.remote", Time: "when", User: "who.login", Service: "component_id", Status: "result.code", Path: "ip"}
	cfg.TimeLayout = "02/01/2006 15.04.05"
	cfg.TimeZone = "Europe/Berlin"
	p := newTestParser(t, cfg)
	r := tokenwatch.Record{Raw: []byte(`{"when":"25/11/2026 09.14.06","time":"2020-01-01T00:00:00Z","req":{"remote":"203.0.113.99:8443"},"remote_addr":"198.51.100.1","who":{"login":"carol"},"user":"nobody","component_id":"ledger","result":{"code":"503"},"ip":"/not/an/ip"}`)}
	p.Parse(&r)
	want{Format: "nginx_json", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.99", User: "carol", Path: "/not/an/ip", Status: 503, Service: "ledger"}.check(t, &r)

	// logfmt keys are mapped the same way; zone-less times take time_zone.
	r = tokenwatch.Record{Raw: []byte(`when="25/11/2026 09.14.06" req.remote=203.0.113.98 component_id=ledger`)}
	p.Parse(&r)
	want{Format: "logfmt", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.98", Service: "ledger"}.check(t, &r)

	r = tokenwatch.Record{Raw: []byte(`{"time":"2026-11-25 09:14:06","ip":"203.0.113.1"}`)}
	p.Parse(&r)
	want{Format: "json", Time: "2026-11-25T08:14:06Z", Path: "203.0.113.1"}.check(t, &r)
}

func TestParseTrustedProxiesConfig(t *testing.T) {
	line := []byte(`{"remote_addr":"198.51.100.1","x_forwarded_for":"203.0.113.5, 192.0.2.9"}`)
	for _, tc := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"default trusts private only", nil, "198.51.100.1"},
		{"cdn edge trusted", []string{"198.51.100.0/24"}, "192.0.2.9"},
		{"cdn and lb trusted", []string{"198.51.100.0/24", "192.0.2.9"}, "203.0.113.5"},
		{"empty list trusts nobody", []string{}, "198.51.100.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.trusted != nil {
				cfg.TrustedProxies = tc.trusted
			}
			p := newTestParser(t, cfg)
			r := tokenwatch.Record{Raw: line}
			p.Parse(&r)
			if got := r.Fields.IP; got != netip.MustParseAddr(tc.want) {
				t.Errorf("IP = %v, want %s", got, tc.want)
			}
		})
	}
}

// TestParseRedactsTokensInFields: a credential found in the record never survives
// into a field value.
func TestParseRedactsTokensInFields(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	tok := "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
	line := `{"ip":"203.0.113.1","path":"/reset/` + tok + `/confirm","user_agent":"bot ` + tok + `","user":"` + tok + `"}`
	start := strings.Index(line, tok)
	r := tokenwatch.Record{Raw: []byte(line), Findings: []tokenwatch.Finding{{
		Kind: "github_pat", Start: start, End: start + len(tok), Redacted: "ghp_ab…6789",
	}}}
	p.Parse(&r)
	for name, v := range map[string]string{"Path": r.Fields.Path, "UserAgent": r.Fields.UserAgent, "User": r.Fields.User} {
		if strings.Contains(v, tok) {
			t.Errorf("%s holds the raw token: %q", name, v)
		}
	}
	if r.Fields.Path != "/reset/ghp_ab…6789/confirm" {
		t.Errorf("Path = %q", r.Fields.Path)
	}
}

func TestParseResetsFields(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	r := tokenwatch.Record{Raw: []byte(`{"ip":"203.0.113.1","status":200}`)}
	p.Parse(&r)
	r.Raw = []byte(`nothing here`)
	p.Parse(&r)
	if r.Fields.IP.IsValid() || r.Fields.Status != 0 || r.Fields.Format != "plain" {
		t.Errorf("fields of the previous record leaked: %+v", r.Fields)
	}
}
