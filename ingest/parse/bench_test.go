package parse

import (
	"context"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch"
)

// benchRecords are one realistic record per format.
var benchRecords = []struct{ name, line string }{
	{"nginx_json", `{"time_local":"25/Nov/2026:08:14:06 +0000","remote_addr":"10.20.0.4","remote_user":"","request":"POST /oauth2/token HTTP/1.1","status":"200","body_bytes_sent":"1234","http_referer":"","http_user_agent":"Apache-HttpClient/4.5.14 (Java/17.0.9)","http_x_forwarded_for":"198.51.100.44","request_time":"0.012","http_authorization":"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln","http_dpop":"","host":"login.example.com"}`},
	{"ecs", `{"@timestamp":"2026-11-25T08:14:08.250Z","ecs":{"version":"8.11.0"},"event":{"dataset":"nginx.access"},"source":{"ip":"198.51.100.90","port":52311},"user_agent":{"original":"curl/8.4.0"},"http":{"version":"1.1","request":{"method":"POST"},"response":{"status_code":201,"body":{"bytes":88}}},"url":{"original":"/v1/orders?coupon=X","path":"/v1/orders","domain":"shop.example.com"},"service":{"name":"orders"},"user":{"name":"m.jones"},"host":{"name":"ip-10-0-3-7"}}`},
	{"envoy_json", `{"start_time":"2026-11-25T08:14:09.501Z","method":"POST","path":"/graphql","protocol":"HTTP/2","response_code":200,"response_flags":"-","bytes_received":431,"bytes_sent":2048,"duration":37,"upstream_service_time":"35","x_forwarded_for":"192.0.2.140,10.4.0.2","user_agent":"Apollo-iOS/1.7","request_id":"5f0c3f5e-45a6-4b5a-8e61-7c0b9ad1e1a2","authority":"graph.example.com","upstream_host":"10.4.7.12:8080","upstream_cluster":"graph","downstream_remote_address":"10.4.0.2:41822"}`},
	{"okta", `{"actor":{"id":"00u8xyz","type":"User","alternateId":"r.lee@example.com","displayName":"R Lee"},"client":{"userAgent":{"rawUserAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0","os":"Windows 10","browser":"CHROME"},"zone":"null","device":"Computer","ipAddress":"203.0.113.117"},"eventType":"user.session.start","outcome":{"result":"SUCCESS"},"published":"2026-11-25T08:14:11.002Z","request":{"ipChain":[{"ip":"203.0.113.117","version":"V4"}]},"debugContext":{"debugData":{"requestUri":"/idp/idx/identify"}},"uuid":"7b1e0d3a","version":"0"}`},
	{"auth0", `{"date":"2026-11-25T08:14:12.345Z","type":"s","description":"Successful login","connection":"Username-Password-Authentication","client_id":"AaiyAPdpYdesoKnqjj8HJqRn4T5titww","client_name":"Web","ip":"192.0.2.77","user_agent":"Safari 17.1.0 / Mac OS X 14.1.0","hostname":"acme.eu.auth0.com","user_id":"auth0|6561d2","user_name":"k.smith@example.com","log_id":"90020261125081412345000000000000001223372036854775807"}`},
	{"combined", `10.0.1.5 - - [25/Nov/2026:08:14:19 +0000] "GET /api/v1/profile?access_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln HTTP/1.1" 200 612 "https://app.example.com/" "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0" "198.51.100.61"`},
	{"iis", `2026-11-25 08:14:23 10.0.0.20 GET /owa/auth/logon.aspx replaceCurrent=1 443 - 198.51.100.150 Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) - 200 0 0 31`},
	{"envoy", `[2026-11-25T08:14:26.001Z] "POST /oauth/token HTTP/2" 401 - via_upstream - "-" 98 120 4 3 "198.51.100.7,10.0.0.8" "Go-http-client/2.0" "e2c9" "auth.example.com" "10.4.2.2:8443" outbound|8443||auth.prod.svc.cluster.local 10.4.0.5:52310 10.4.0.9:8443 10.0.0.8:40122 auth.example.com default`},
	{"logfmt", `ts=2026-11-25T08:14:27.123Z level=info caller=http.go:118 method=GET path="/api/items?id=3" status=200 ip=203.0.113.19 ua="Mozilla/5.0 (Macintosh)" service=catalog user=guest duration=2.3ms`},
	{"syslog5424", `<165>1 2026-11-25T08:14:31Z gw-2 apigw - ACCESS [meta sequenceId="7"] ip=198.51.100.120 method=DELETE path=/v1/keys/9 status=204 user=ops`},
	{"syslog3164", `<190>Nov 25 08:14:32 web-3 nginx: 203.0.113.150 - - [25/Nov/2026:08:14:32 +0000] "GET /static/app.js HTTP/1.1" 304 0 "https://app.example.com/" "Mozilla/5.0"`},
	{"plain", `2026-11-25 08:14:37,812 INFO  [http-nio-8080-exec-3] c.e.auth.TokenFilter - Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln accepted for user=dave from 192.0.2.17`},
}

func BenchmarkParse(b *testing.B) {
	p, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	for _, br := range benchRecords {
		b.Run(br.name, func(b *testing.B) {
			raw := []byte(br.line)
			r := tokenwatch.Record{Raw: raw}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				r.Flags = 0
				p.Parse(&r)
			}
			if r.Fields.Format == "plain" && br.name != "plain" {
				b.Fatalf("%s parsed as plain", br.name)
			}
		})
	}
}

// BenchmarkParseHuge: a 10 MB JSON record with the fields at the start and a big
// value after them (the shape of a request body logged whole).
func BenchmarkParseHuge(b *testing.B) {
	p, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, line string }{
		{"json_10MB_value", `{"ip":"203.0.113.9","body":"` + strings.Repeat("abcdefgh", 10<<20/8) + `","status":200}`},
		{"json_10MB_keys", `{` + strings.Repeat(`"key":1,`, 10<<20/8) + `"ip":"203.0.113.9"}`},
		{"plain_10MB", strings.Repeat("lorem ipsum dolor sit amet ", 10<<20/27)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := tokenwatch.Record{Raw: []byte(tc.line)}
			b.SetBytes(int64(len(tc.line)))
			b.ReportAllocs()
			for b.Loop() {
				p.Parse(&r)
			}
		})
	}
}

// BenchmarkProcess: a batch of 1024 records, 1 in 8 with a finding (a leaky
// app log): parsing cost lands only on those.
func BenchmarkProcess(b *testing.B) {
	p, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	batch := &tokenwatch.Batch{}
	size := 0
	for i := 0; i < 1024; i++ {
		br := benchRecords[i%len(benchRecords)]
		r := tokenwatch.Record{Raw: []byte(br.line)}
		if i%8 == 0 {
			r.Findings = []tokenwatch.Finding{{Kind: "jwt", Start: 0, End: 4}}
		}
		batch.Records = append(batch.Records, r)
		size += len(br.line)
	}
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		batch.Uses = batch.Uses[:0]
		for i := range batch.Records {
			batch.Records[i].Parsed = false
		}
		if err := p.Process(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTime(b *testing.B) {
	for _, s := range []string{"2026-11-25T08:14:06.123456Z", "25/Nov/2026:08:14:06 +0000", "1795594446.123", "Nov 25 08:14:06"} {
		b.Run(s, func(b *testing.B) {
			in := []byte(s)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := parseTimeRef(in, nil, ref); !ok {
					b.Fatal("no time")
				}
			}
		})
	}
}

func BenchmarkResolveClient(b *testing.B) {
	p, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	xff := []byte("203.0.113.9, 198.51.100.1, 10.0.0.2, 10.0.0.3")
	peer, _ := parseIP([]byte("10.0.0.4"))
	b.SetBytes(int64(len(xff)))
	b.ReportAllocs()
	for b.Loop() {
		p.resolveClient(peer, xff, nil)
	}
}

func TestResolveClientNoAlloc(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	xff := []byte("203.0.113.9, 198.51.100.1, 10.0.0.2, 10.0.0.3")
	peer, _ := parseIP([]byte("10.0.0.4"))
	if n := testing.AllocsPerRun(100, func() { p.resolveClient(peer, xff, nil) }); n != 0 {
		t.Errorf("resolveClient allocates %v times per call", n)
	}
}

func TestParseTimeISONoAlloc(t *testing.T) {
	in := []byte("2026-11-25T08:14:06.123456+01:00")
	if n := testing.AllocsPerRun(100, func() { parseTimeRef(in, nil, ref) }); n > 1 {
		t.Errorf("ISO time parse allocates %v times", n)
	}
}
