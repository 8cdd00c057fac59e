package parse

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tokenwatch/tokenwatch"
)

func TestParseMalformed(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	const (
		mal  = tokenwatch.FlagMalformed
		bin  = tokenwatch.FlagBinary
		utf8 = tokenwatch.FlagInvalidUTF8
	)
	deep := strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200)
	deepArr := `{"a":` + strings.Repeat("[", 100000)
	tests := []struct {
		name   string
		line   string
		reason string
		want   want
	}{
		{"unterminated object keeps prefix fields", `{"ip":"203.0.113.9","path":"/a?x","status":`, reasonJSONSyntax,
			want{Format: "json", IP: "203.0.113.9", Path: "/a", Flags: mal}},
		{"truncated string", `{"ip":"203.0.113.9","ua":"abc`, reasonJSONSyntax,
			want{Format: "json", IP: "203.0.113.9", Flags: mal}},
		{"missing colon, plain fallback finds ip", `{"ip" "203.0.113.9" "GET /x HTTP/1.1"}`, reasonJSONSyntax,
			want{Format: "json", IP: "203.0.113.9", Method: "GET", Path: "/x", Flags: mal}},
		{"single quotes", `{'ip':'203.0.113.9'}`, reasonJSONSyntax,
			want{Format: "json", IP: "203.0.113.9", Flags: mal}},
		{"trailing garbage", `{"ip":"203.0.113.9"} trailing`, reasonJSONTrailing,
			want{Format: "json", IP: "203.0.113.9", Flags: mal}},
		{"bad literal", `{"ip":"203.0.113.9","ok":tru}`, reasonJSONSyntax,
			want{Format: "json", IP: "203.0.113.9", Flags: mal}},
		{"mismatched brackets", `{"a":[1,2},"ip":"203.0.113.9"}`, reasonJSONSyntax,
			want{Format: "json", IP: "203.0.113.9", Flags: mal}},
		{"deep nesting", deep, reasonJSONDepth, want{Format: "json", Flags: mal}},
		{"100k open brackets", deepArr, reasonJSONDepth, want{Format: "json", Flags: mal}},
		{"invalid utf-8 in json", "{\"ip\":\"203.0.113.9\",\"user\":\"bo\xffb\"}", reasonInvalidUTF8,
			want{Format: "json", IP: "203.0.113.9", User: "bo\uFFFDb", Flags: utf8}},
		{"invalid utf-8 in text", "203.0.113.9 - b\xc3\x28 [25/Nov/2026:08:14:06 +0000] \"GET / HTTP/1.1\" 200 1", reasonInvalidUTF8,
			want{Format: "common", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.9", User: "b\uFFFD(", Method: "GET", Path: "/", Status: 200, Flags: utf8}},
		{"binary with NUL", "\x00\x01\x02 203.0.113.9 \x00", reasonBinary,
			want{Format: "plain", IP: "203.0.113.9", Flags: bin}},
		{"binary control bytes", "\x01\x02\x03\x04\x05\x06abc", reasonBinary,
			want{Format: "plain", Flags: bin}},
		{"syslog 5424 bad header", `<13>1 not-a-time host app - - - {"ip":"203.0.113.9"}`, reasonSyslog,
			want{Format: "syslog+plain", IP: "203.0.113.9", Flags: mal}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := malformedHandles[tc.reason]
			before := counterValue(t, c)
			r := tokenwatch.Record{Raw: []byte(tc.line)}
			p.Parse(&r)
			if tc.want.Format == "syslog+plain" {
				tc.want.Format = "syslog"
			}
			tc.want.check(t, &r)
			if got := counterValue(t, c) - before; got != 1 {
				t.Errorf("malformed{reason=%q} grew by %v, want 1", tc.reason, got)
			}
		})
	}
}

// TestParseHugeRecords: 10 MB records of every shape parse in one linear pass and
// keep the fields near their start.
func TestParseHugeRecords(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	const size = 10 << 20
	big := strings.Repeat("x", size)
	backslashes := strings.Repeat(`\\`, size/2)
	escQuotes := strings.Repeat(`\"`, size/2)
	tests := []struct {
		name string
		line string
		want want
	}{
		{"json big value", `{"ip":"203.0.113.9","blob":"` + big + `","status":200}`,
			want{Format: "json", IP: "203.0.113.9", Status: 200}},
		{"json big escaped value", `{"ip":"203.0.113.9","blob":"` + backslashes + `","status":200}`,
			want{Format: "json", IP: "203.0.113.9", Status: 200}},
		{"json escaped quotes, unterminated", `{"ip":"203.0.113.9","blob":"` + escQuotes,
			want{Format: "json", IP: "203.0.113.9", Flags: tokenwatch.FlagMalformed}},
		{"json big key", `{"` + big + `":1,"ip":"203.0.113.9"}`,
			want{Format: "json", IP: "203.0.113.9"}},
		{"json big user agent is capped", `{"ip":"203.0.113.9","user_agent":"` + big + `"}`,
			want{Format: "json", IP: "203.0.113.9", UA: big[:maxUAField]}},
		{"json many keys", `{` + strings.Repeat(`"k":1,`, size/6) + `"ip":"203.0.113.9"}`,
			want{Format: "json", IP: "203.0.113.9"}},
		{"json big array", `{"a":[` + strings.Repeat(`1,`, size/2) + `1],"ip":"203.0.113.9"}`,
			want{Format: "json", IP: "203.0.113.9"}},
		{"combined big ua", `203.0.113.9 - - [25/Nov/2026:08:14:06 +0000] "GET / HTTP/1.1" 200 1 "-" "` + big + `"`,
			want{Format: "combined", Time: "2026-11-25T08:14:06Z", IP: "203.0.113.9", UA: big[:maxUAField], Method: "GET", Path: "/", Status: 200}},
		{"logfmt big value", `ip=203.0.113.9 blob="` + big + `" status=200`,
			want{Format: "logfmt", IP: "203.0.113.9", Status: 200}},
		{"plain, ip far away is not searched", big + " 203.0.113.9", want{Format: "plain"}},
		{"plain spaces", strings.Repeat(" ", size) + "x", want{Format: "plain"}},
		{"quotes only", strings.Repeat(`"`, size), want{Format: "plain"}},
		{"brackets only", strings.Repeat(`[`, size), want{Format: "plain"}},
		{"equals only", "a=" + strings.Repeat(`=`, size), want{Format: "plain"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tokenwatch.Record{Raw: []byte(tc.line)}
			p.Parse(&r)
			tc.want.check(t, &r)
		})
	}
}

// TestWalkJSONAcceptsValidJSON: every object encoding/json accepts, the walker
// accepts, and finds the values at the paths it should.
func TestWalkJSONAcceptsValidJSON(t *testing.T) {
	keys := buildKeys(FieldMap{})
	docs := []string{
		`{}`,
		` { "a" : [ ] , "b" : { } } `,
		`{"a":[{"b":[1,{"c":null}]},[],[[]]],"ip":"203.0.113.9"}`,
		`{"x":-1.5e+10,"y":true,"z":false,"n":null,"s":"\u00e9\n\"","ip":"203.0.113.9"}`,
		`{"A.B":{"C":1},"IP":"203.0.113.9"}`,
	}
	for _, d := range docs {
		if !json.Valid([]byte(d)) {
			t.Fatalf("test doc is not JSON: %s", d)
		}
		var c collected
		if reason := walkJSON([]byte(d), keys, &c); reason != "" {
			t.Errorf("walkJSON(%s) = %s", d, reason)
		}
		if strings.Contains(d, "203.0.113.9") && !bytes.Equal(c.get(fIP), []byte("203.0.113.9")) {
			t.Errorf("walkJSON(%s): ip = %q", d, c.get(fIP))
		}
	}
}

func TestAppendUnescaped(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, "plain"},
		{`a\"b\\c\/d`, `a"b\c/d`},
		{`\b\f\n\r\t`, "\b\f\n\r\t"},
		{`\u00e9\u20AC`, "é€"},
		{`\ud83d\ude00`, "😀"},
		{`\ud83d`, "\uFFFD"},
		{`\ud83dx`, "\uFFFDx"},
		{`\ude00`, "\uFFFD"},
		{`\u12`, "\uFFFD12"},
		{`\x22quoted\x22`, `"quoted"`},
		{`\xZZ`, "\uFFFDZZ"},
		{`\q`, "\uFFFD"},
		{`trailing\`, "trailing\uFFFD"},
	}
	for _, tc := range tests {
		if got := string(appendUnescaped(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("appendUnescaped(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
