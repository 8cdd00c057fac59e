package parse

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tokenwatch/tokenwatch"
)

// seedRecords are realistic records of every format plus hostile shapes; the
// golden corpus in testdata adds more.
var seedRecords = []string{
	`{"time_local":"25/Nov/2026:08:14:06 +0100","remote_addr":"10.1.2.3","request":"GET /a?b HTTP/1.1","status":"401","http_user_agent":"curl/8","http_x_forwarded_for":"203.0.113.9, 10.1.0.1","http_dpop":""}`,
	`{"@timestamp":"2026-11-25T08:14:06.123Z","ecs":{"version":"8.11.0"},"source":{"ip":"2001:db8::7"},"http":{"request":{"method":"get"}}}`,
	`{"start_time":"2026-11-25T08:14:06.318Z","method":"GET","path":"/x","response_code":200,"downstream_remote_address":"10.0.0.8:51234","x_forwarded_for":"203.0.113.9"}`,
	`{"published":"2026-11-25T08:14:06.412Z","eventType":"user.session.start","client":{"ipAddress":"198.51.100.77"},"outcome":{"result":"DENY"}}`,
	`{"log_id":"9","data":{"date":"2026-11-25T08:14:06Z","type":"fapi","ip":"203.0.113.5"}}`,
	`{"request":{"headers":{"Dpop":["x"],"User-Agent":["a"]}},"resp_headers":{}}`,
	`{"log":"203.0.113.9 - - [25/Nov/2026:08:14:06 +0000] \"GET / HTTP/1.1\" 200 2 \"-\" \"ua\"\n"}`,
	`203.0.113.9 - bob [10/Oct/2000:13:55:36 -0700] "GET /p?x HTTP/1.0" 200 2326 "ref" "UA" "198.51.100.1"`,
	`vhost:443 203.0.113.9 - - [25/Nov/2026:08:14:06 +0000] "GET / HTTP/1.1" 200 1`,
	`2026-11-25 08:14:06 10.0.0.5 GET /api id=7 443 bob 203.0.113.9 Mozilla/5.0+(X) - 200 0 0 15`,
	`#Fields: date time c-ip cs-method cs-uri-stem sc-status`,
	`[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "id" "locations" "tcp://10.0.2.1:80"`,
	`ts=2026-11-25T08:14:06Z level=info ip=198.51.100.1 ua="curl \"8\"" status=200 method=GET path=/x`,
	`<165>1 2026-11-25T08:14:06.003Z host app 1 ID [sd a="b\]"] ip=203.0.113.1 x=y`,
	`<34>Nov 25 08:14:06 host su[1]: 'su root' failed on /dev/pts/8`,
	`2026-11-25T08:14:06.1Z stdout F {"ip":"203.0.113.8"}`,
	`[Wed Nov 25 08:14:06.123456 2026] [core:error] [client 203.0.113.3:5100] AH00126`,
	`2026-11-25 08:14:06,123 ERROR from [2001:db8::1]:443 "GET /x HTTP/1.1" 500`,
	"0000-00-00 00:00 00000000 AAA  ", "]x", "[]",
	`{"a":[[[[[[[[[[[[[[[[[[[[`, `{"\ud800":"\x41","k":1e999}`, `{"a":"\\\\\\"}`, `{`, `<`, `[`, `#`, `0`,
	"\x00\xff\xfe binary", "\xef\xbb\xbf{\"ip\":\"203.0.113.1\"}", `"unbalanced`, `a=b=c "d`,
}

// FuzzParse: any bytes, any format detection path: Parse never panics, always
// marks the record parsed, and produces valid UTF-8 fields within their caps.
func FuzzParse(f *testing.F) {
	for _, s := range seedRecords {
		f.Add([]byte(s))
	}
	for _, s := range goldenInputs(f) {
		f.Add([]byte(s))
	}
	cfg := DefaultConfig()
	cfg.Fields.IP = "custom.ip"
	p, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	p.iis.observe("fuzz", []byte("#Fields: date time c-ip cs-method cs-uri-stem sc-status cs(DPoP)"))
	internal := malformedHandles[reasonInternal]
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Parse recovers from panics; a recovered panic is still a bug here.
		before := counterValue(t, internal)
		defer func() {
			if counterValue(t, internal) != before {
				t.Fatalf("parser panicked (recovered) on %q", raw)
			}
		}()
		for _, src := range []string{"", "fuzz"} {
			r := tokenwatch.Record{Raw: raw, Origin: tokenwatch.Origin{Source: src}}
			if len(raw) > 8 {
				r.Findings = []tokenwatch.Finding{{Start: 2, End: 8, Redacted: "x…y"}}
			}
			p.Parse(&r)
			if !r.Parsed || r.Fields.Format == "" {
				t.Fatalf("record not parsed: %+v", r.Fields)
			}
			fs := r.Fields
			for name, v := range map[string]string{"ua": fs.UserAgent, "user": fs.User, "method": fs.Method,
				"path": fs.Path, "service": fs.Service, "host": fs.Host} {
				if !utf8.ValidString(v) {
					t.Errorf("%s is not valid UTF-8: %q", name, v)
				}
				if len(v) > maxPathField {
					t.Errorf("%s is %d bytes long", name, len(v))
				}
			}
			if strings.ContainsAny(fs.Path, "?#") {
				t.Errorf("path keeps its query: %q", fs.Path)
			}
			if fs.Status != 0 && (fs.Status < 100 || fs.Status > 999) {
				t.Errorf("status %d", fs.Status)
			}
			if fs.DPoPProof && !fs.HeadersLogged {
				t.Error("DPoP proof without HeadersLogged")
			}
		}
		// Revocation parsing of the same bytes must not panic either.
		b := &tokenwatch.Batch{Records: []tokenwatch.Record{{Raw: raw, Kind: tokenwatch.KindRevocation}}}
		_ = p.Process(t.Context(), b)
	})
}

// FuzzWalkJSON: every JSON object encoding/json accepts is accepted by the walker
// (unless nested deeper than maxJSONDepth), and nothing panics.
func FuzzWalkJSON(f *testing.F) {
	for _, s := range seedRecords {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"user_agent":"a\"b\\c\/d\n\t"}`))
	f.Add([]byte(`{"x":{"user_agent":"nested"},"user_agent":"top"}`))
	keys := buildKeys(FieldMap{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var c collected
		reason := walkJSON(raw, keys, &c)
		var obj map[string]json.RawMessage
		valid := json.Unmarshal(raw, &obj) == nil && obj != nil
		if reason != "" {
			if valid && reason != reasonJSONDepth {
				t.Fatalf("walkJSON rejected valid JSON (%s): %q", reason, raw)
			}
			return
		}
		// Differential check of string decoding: a single top-level "user_agent"
		// string decodes as encoding/json decodes it.
		if !valid || !utf8.Valid(raw) || bytes.Contains(raw, []byte(`\u`)) ||
			bytes.Count(bytes.ToLower(raw), []byte("user_agent")) != 1 {
			return
		}
		var ua string
		if json.Unmarshal(obj["user_agent"], &ua) != nil || ua == "" || ua == "-" {
			return
		}
		if got := string(c.get(fUA)); got != ua {
			t.Fatalf("user_agent decoded as %q, encoding/json says %q (record %q)", got, ua, raw)
		}
	})
}

// FuzzParseTime: no panics, and successful parses are real instants.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2026-11-25T08:14:06Z", "2026-11-25 08:14:06,123 +01:00", "1795594446.123", "1795594446123456789",
		"1.7e9", "10/Oct/2000:13:55:36 -0700", "Nov  5 08:14:06", "Wed Nov 25 08:14:06.1 2026",
		"Wed, 25 Nov 2026 08:14:06 GMT", "2026-11-25T24:00:00Z", "[2026-11-25]", `"1795594446"`,
		"2026-11-25 08:14:06 -0700 MST m=+0.1", "Feb 29 2024 00:00:00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, ok := parseTimeRef([]byte(s), nil, ref)
		if ok && tm.IsZero() {
			t.Fatalf("ParseTime(%q) ok with the zero time", s)
		}
		if ok && (tm.Year() < 1970 || tm.Year() > 10000) {
			t.Fatalf("ParseTime(%q) = %v", s, tm)
		}
	})
}

// FuzzXFF: the resolved client is the peer, an address of the header, or invalid
// only when both are unusable; nothing panics.
func FuzzXFF(f *testing.F) {
	for _, s := range []string{
		"203.0.113.9", "203.0.113.9, 10.0.0.1", "[2001:db8::1]:443, unknown", ",,,", " , 10.0.0.1 ,",
		`for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"`, "for=_hidden", "1.2.3.4:",
	} {
		f.Add("10.0.0.1", s)
		f.Add("", s)
		f.Add("203.0.113.200", s)
	}
	p, err := New(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peerS, hdr string) {
		peer, _ := netip.ParseAddr(peerS)
		peer = peer.WithZone("").Unmap()
		for _, got := range []netip.Addr{
			p.resolveClient(peer, []byte(hdr), nil),
			p.resolveClient(peer, nil, []byte(hdr)),
		} {
			if peer.IsValid() && !p.trusted(peer) && got != peer {
				t.Fatalf("untrusted peer %v replaced by %v from %q", peer, got, hdr)
			}
			if got.IsValid() && got != peer && !headerHolds(hdr, got) {
				t.Fatalf("client %v neither the peer nor from %q", got, hdr)
			}
		}
	})
}

// headerHolds reports whether some piece of hdr (split at , ; =, trimmed of
// spaces and quotes) parses as a.
func headerHolds(hdr string, a netip.Addr) bool {
	for _, piece := range strings.FieldsFunc(hdr, func(r rune) bool { return r == ',' || r == ';' || r == '=' }) {
		piece = strings.Trim(piece, " \t\r\n\"")
		if b, ok := parseIP([]byte(piece)); ok && b == a {
			return true
		}
	}
	return false
}

// fuzzParser fuzzes one text parser directly (FuzzParse reaches them through
// detection; these keep each parser's own input space covered): no panic, and the
// fields it fills stay valid UTF-8 with query-free paths.
func fuzzParser(f *testing.F, seeds []string, run func(st *pstate, raw []byte)) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	p, err := New(DefaultConfig(), WithClock(func() time.Time { return ref }))
	if err != nil {
		f.Fatal(err)
	}
	p.iis.observe("fuzz", []byte("#Fields: date time c-ip cs-method cs-uri-stem sc-status cs(User-Agent) X-Forwarded-For cs(DPoP)"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var fs tokenwatch.Fields
		st := pstate{p: p, ref: ref, source: "fuzz", f: &fs}
		run(&st, raw)
		for _, v := range []string{fs.UserAgent, fs.User, fs.Method, fs.Path, fs.Service, fs.Host} {
			if !utf8.ValidString(v) || len(v) > maxPathField {
				t.Fatalf("bad field %q", v)
			}
		}
		if strings.ContainsAny(fs.Path, "?#") {
			t.Fatalf("path keeps its query: %q", fs.Path)
		}
	})
}

func FuzzCLF(f *testing.F) {
	fuzzParser(f, []string{
		`203.0.113.9 - bob [10/Oct/2000:13:55:36 -0700] "GET /p?x HTTP/1.0" 200 2326 "ref" "UA" "198.51.100.1, 10.0.0.1" rt=0.1`,
		`vhost:443 203.0.113.9 - - [25/Nov/2026:08:14:06 +0000] "GET / HTTP/1.1" 200 1`,
		`h i u [25/Nov/2026:08:14:06 +0000] "\"GET\" /a\\\" HTTP/1.1" - -`,
	}, func(st *pstate, raw []byte) { st.clf(raw) })
}

func FuzzEnvoyText(f *testing.F) {
	fuzzParser(f, []string{
		`[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "id" "locations" "tcp://10.0.2.1:80"`,
		`[2026-11-25T08:14:26.001Z] "POST /t HTTP/2" 401 - via_upstream - "-" 98 120 4 3 "198.51.100.7,10.0.0.8" "Go" "e2c9" "auth" "10.4.2.2:8443" c 10.4.0.5:52310 10.4.0.9:8443 10.0.0.8:40122 sni route`,
	}, func(st *pstate, raw []byte) { st.envoyText(raw) })
}

func FuzzIIS(f *testing.F) {
	fuzzParser(f, []string{
		`2026-11-25 08:14:23 10.0.0.20 GET /owa/auth/logon.aspx replaceCurrent=1 443 - 198.51.100.150 Mozilla/5.0+(Windows) - 200 0 0 31`,
		`2026-11-25 08:14:23 10.0.0.1 POST /token 401 curl/8 203.0.113.1,10.0.0.2 eyJ.e30.x`,
	}, func(st *pstate, raw []byte) {
		st.iisLine(raw)
		st.source = ""
		st.iisLine(raw)
	})
}

func FuzzSyslog(f *testing.F) {
	fuzzParser(f, []string{
		`<165>1 2026-11-25T08:14:06.003Z host app 1 ID [sd a="b\]" c="\"d"][e f="g"] ip=203.0.113.1 x=y`,
		`<34>Nov 25 08:14:06 host su[1]: 'su root' failed`,
		`<14>1 - - - - - -`,
		`Nov  5 08:14:06 host tag: msg`, `2026-11-25T08:14:35.5+00:00 app-4 payments[901]: x`,
	}, func(st *pstate, raw []byte) {
		if len(raw) > 0 && raw[0] == '<' {
			if h, msg, ok := st.syslogPRI(raw); ok {
				st.detect(msg, 1)
				st.applySyslog(h)
			}
			return
		}
		if h, _, ok := st.syslog3164(raw, false); ok {
			st.applySyslog(h)
		}
	})
}

func FuzzLogfmt(f *testing.F) {
	fuzzParser(f, []string{
		`ts=2026-11-25T08:14:06Z level=info ip=198.51.100.1 ua="curl \"8\"" status=200 method=GET path=/x?y msg="GET /a 200"`,
		`a= b="" c="unterminated`, `x_forwarded_for="10.0.0.1, 203.0.113.5" remote_addr=10.0.0.2:1 dpop=`,
	}, func(st *pstate, raw []byte) {
		looksLogfmt(raw)
		st.logfmt(raw, 0)
	})
}

func FuzzPlain(f *testing.F) {
	fuzzParser(f, []string{
		`2026-11-25 08:14:37,812 INFO from 192.0.2.17 "GET /x?y HTTP/1.1" 200`,
		`[Wed Nov 25 08:14:39.123456 2026] [client 203.0.113.12:50111] x`,
		`I1125 08:14:41.000000 12 x.go:1] peer=[2001:db8::99]:443`, `Mon, 02 Jan 2006 15:04:05 GMT POST http://h/p`,
	}, func(st *pstate, raw []byte) {
		st.plainDetect(raw, 0)
		st.plain(raw)
	})
}
