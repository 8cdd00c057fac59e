package parse

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// fakeFP fingerprints with a plain SHA-256 (detect.Scanner uses an HMAC) and
// remembers the lengths it saw, never the tokens.
type fakeFP struct{ calls int }

func (f *fakeFP) Fingerprint(tok []byte) tokenwatch.Fingerprint {
	f.calls++
	sum := sha256.Sum256(tok)
	var fp tokenwatch.Fingerprint
	copy(fp[:], sum[:])
	return fp
}

func fpOf(tok string) tokenwatch.Fingerprint { return (&fakeFP{}).Fingerprint([]byte(tok)) }

func finding(raw, tok string) tokenwatch.Finding {
	i := strings.Index(raw, tok)
	return tokenwatch.Finding{
		Kind: "jwt", Rule: "jwt.compact", Start: i, End: i + len(tok), Fingerprint: fpOf(tok),
		Redacted: tok[:6] + "…" + tok[len(tok)-4:], Scheme: "Bearer", Param: "Authorization",
		JWT: &tokenwatch.JWTInfo{Jti: "j1"}, Sealed: []byte{1, 2, 3},
	}
}

func TestProcessBuildsUses(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	tok := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	auth := `{"time":"2026-11-25T08:14:06Z","remote_addr":"203.0.113.9","method":"GET","path":"/api","status":200,"user_agent":"curl/8","service":"api","host":"api.example.com","user":"bob","headers":{"authorization":"Bearer ` + tok + `"}}`
	app := `app log without time: leaked ` + tok + ` and ` + tok
	clean := `{"time":"2026-11-25T08:14:06Z","remote_addr":"203.0.113.10"}`
	b := &tokenwatch.Batch{Records: []tokenwatch.Record{
		{Origin: tokenwatch.Origin{Source: "auth", Partition: 3, Offset: 41}, Raw: []byte(auth), Kind: tokenwatch.KindAuth,
			Findings: []tokenwatch.Finding{finding(auth, tok)}},
		{Origin: tokenwatch.Origin{Source: "clean", Partition: -1, Offset: 1}, Raw: []byte(clean)},
		{Origin: tokenwatch.Origin{Source: "app.log", Partition: -1, Offset: 7}, Raw: []byte(app), Kind: tokenwatch.KindApp,
			Findings: []tokenwatch.Finding{finding(app, tok), finding(app[strings.Index(app, tok)+1:], tok)}},
	}}
	b.Records[2].Findings[1].Start += strings.Index(app, tok) + 1
	b.Records[2].Findings[1].End += strings.Index(app, tok) + 1

	if err := p.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if b.Records[1].Parsed {
		t.Error("a record without findings was parsed")
	}
	if len(b.Uses) != 3 {
		t.Fatalf("got %d uses, want 3", len(b.Uses))
	}
	u := b.Uses[0]
	wantUse := tokenwatch.TokenUse{
		Fingerprint: fpOf(tok), Kind: "jwt", Rule: "jwt.compact", Redacted: "eyJhbG…dXJl", Leak: false,
		Time: time.Date(2026, 11, 25, 8, 14, 6, 0, time.UTC), IP: netip.MustParseAddr("203.0.113.9"),
		UserAgent: "curl/8", User: "bob", Method: "GET", Path: "/api", Status: 200, Service: "api", Host: "api.example.com",
		Scheme: "Bearer", Param: "Authorization", HeadersLogged: true,
		Origin: tokenwatch.Origin{Source: "auth", Partition: 3, Offset: 41}, Index: 0,
	}
	if u.JWT == nil || u.JWT.Jti != "j1" || string(u.Sealed) != "\x01\x02\x03" {
		t.Errorf("JWT/Sealed not carried: %+v %v", u.JWT, u.Sealed)
	}
	u.JWT, u.Sealed = nil, nil
	if !reflect.DeepEqual(u, wantUse) {
		t.Errorf("use 0 =\n %+v\nwant\n %+v", u, wantUse)
	}
	for i, u := range b.Uses[1:] {
		if !u.Leak || u.Index != i || !u.Time.Equal(ref) || u.Origin.Source != "app.log" || u.Origin.Offset != 7 {
			t.Errorf("app use %d: leak=%v index=%d time=%v origin=%+v; want leak, index %d, ingest time, app.log:7", i, u.Leak, u.Index, u.Time, u.Origin, i)
		}
	}
}

func TestProcessRevocations(t *testing.T) {
	fp := &fakeFP{}
	p, err := New(DefaultConfig(), WithClock(func() time.Time { return ref }), WithFingerprinter(fp))
	if err != nil {
		t.Fatal(err)
	}
	hexFP := fpOf("other").String()
	lines := []string{
		`{"jti":"abc-123","iss":"https://idp.example.com/","time":"2026-11-25T08:00:00Z","reason":"logout"}`,
		`{"token":"secret-token-value","time":1795593600}`,
		`{"fingerprint":"` + hexFP + `","reason":"tokenwatch"}`,
		`{"token":"esc\/aped"}`,
		`{"jti":"x","fingerprint":"nothex"}`,
		`{"reason":"nothing to revoke"}`,
		`not json`,
		``,
	}
	b := &tokenwatch.Batch{}
	for i, l := range lines {
		b.Records = append(b.Records, tokenwatch.Record{
			Origin: tokenwatch.Origin{Source: "revocations", Partition: 0, Offset: int64(i)},
			Raw:    []byte(l), Kind: tokenwatch.KindRevocation,
			// The scanner may well find the token in a revocation event: no use results.
			Findings: []tokenwatch.Finding{{Kind: "bearer"}},
		})
	}
	before := counterValue(t, malformedHandles[reasonRevocation])
	if err := p.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(b.Uses) != 0 {
		t.Errorf("revocation records produced %d uses", len(b.Uses))
	}
	want := []tokenwatch.Revocation{
		{JTI: "abc-123", Issuer: "https://idp.example.com/", Time: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC), Reason: "logout"},
		{Fingerprint: fpOf("secret-token-value"), Time: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)},
		{Fingerprint: fpOf("other"), Time: ref, Reason: "tokenwatch"},
		{Fingerprint: fpOf("esc/aped"), Time: ref},
	}
	if len(b.Revocations) != len(want) {
		t.Fatalf("got %d revocations, want %d: %+v", len(b.Revocations), len(want), b.Revocations)
	}
	for i, w := range want {
		got := b.Revocations[i]
		w.Origin = tokenwatch.Origin{Source: "revocations", Partition: 0, Offset: int64(i)}
		if !got.Time.Equal(w.Time) {
			t.Errorf("revocation %d time = %v, want %v", i, got.Time, w.Time)
		}
		got.Time, w.Time = time.Time{}, time.Time{}
		if got != w {
			t.Errorf("revocation %d = %+v, want %+v", i, got, w)
		}
	}
	if fp.calls != 2 {
		t.Errorf("fingerprinter called %d times, want 2", fp.calls)
	}
	if got := counterValue(t, malformedHandles[reasonRevocation]) - before; got != 4 {
		t.Errorf("malformed{reason=revocation} grew by %v, want 4", got)
	}
	for i := 4; i < len(lines); i++ {
		if b.Records[i].Flags&tokenwatch.FlagMalformed == 0 {
			t.Errorf("record %d (%q) not flagged malformed", i, lines[i])
		}
	}
}

func TestProcessRevocationWithoutFingerprinter(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	b := &tokenwatch.Batch{Records: []tokenwatch.Record{
		{Raw: []byte(`{"token":"abc"}`), Kind: tokenwatch.KindRevocation},
		{Raw: []byte(`{"jti":"j","token":"abc"}`), Kind: tokenwatch.KindRevocation},
	}}
	before := counterValue(t, malformedHandles[reasonNoFP])
	if err := p.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(b.Revocations) != 0 {
		t.Errorf("got %+v, want no revocations", b.Revocations)
	}
	if got := counterValue(t, malformedHandles[reasonNoFP]) - before; got != 2 {
		t.Errorf("malformed{reason=revocation_no_fingerprinter} grew by %v, want 2", got)
	}
}

func TestProcessCancelled(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := &tokenwatch.Batch{Records: []tokenwatch.Record{{Raw: []byte("x"), Findings: []tokenwatch.Finding{{}}}}}
	if err := p.Process(ctx, b); !errors.Is(err, context.Canceled) {
		t.Errorf("Process on a cancelled context = %v", err)
	}
}

// TestProcessIISFieldsHeader: a #Fields: header (a record without findings) sets
// the column order of later lines of the same source, and only of that source.
func TestProcessIISFieldsHeader(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	header := `#Fields: date time s-sitename cs-method cs-uri-stem cs-uri-query c-ip cs-username cs(User-Agent) cs-host sc-status X-Forwarded-For cs(DPoP)`
	line := `2026-11-25 08:14:06 W3SVC1 POST /connect/token - 10.0.0.4 - okhttp/4.12 login.example.com 200 198.51.100.8 eyJ.e30.sig`
	b := &tokenwatch.Batch{Records: []tokenwatch.Record{
		{Origin: tokenwatch.Origin{Source: "u_ex261125.log", Partition: -1, Offset: 1}, Raw: []byte("#Software: Microsoft Internet Information Services 10.0")},
		{Origin: tokenwatch.Origin{Source: "u_ex261125.log", Partition: -1, Offset: 2}, Raw: []byte(header)},
		{Origin: tokenwatch.Origin{Source: "u_ex261125.log", Partition: -1, Offset: 3}, Raw: []byte(line), Findings: []tokenwatch.Finding{{}}},
		{Origin: tokenwatch.Origin{Source: "other.log", Partition: -1, Offset: 3}, Raw: []byte(line), Findings: []tokenwatch.Finding{{}}},
	}}
	if err := p.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	want{Format: "iis", Time: "2026-11-25T08:14:06Z", IP: "198.51.100.8", UA: "okhttp/4.12", Method: "POST", Path: "/connect/token",
		Status: 200, Service: "W3SVC1", Host: "login.example.com", DPoP: true, Headers: true}.check(t, &b.Records[2])
	// other.log has no header: the default order does not fit this line.
	if b.Records[3].Fields.Format == "iis" {
		t.Errorf("layout of one source applied to another: %+v", b.Records[3].Fields)
	}
}

// TestParserConcurrent: one Parser shared by goroutines that parse and learn IIS
// headers at once (run with -race).
func TestParserConcurrent(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	var lines []string
	for _, l := range goldenInputs(t) {
		if !strings.HasPrefix(l, "#") { // headers would change the layout between passes
			lines = append(lines, l)
		}
	}
	want := make([]tokenwatch.Fields, len(lines))
	for i, l := range lines {
		r := tokenwatch.Record{Raw: []byte(l), Origin: tokenwatch.Origin{Source: "single"}}
		p.Parse(&r)
		want[i] = r.Fields
	}
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for n := 0; n < 20; n++ {
				b := &tokenwatch.Batch{}
				for i, l := range lines {
					b.Records = append(b.Records, tokenwatch.Record{Raw: []byte(l), Findings: []tokenwatch.Finding{{}},
						Origin: tokenwatch.Origin{Source: "single", Offset: int64(i)}})
				}
				b.Records = append(b.Records, tokenwatch.Record{Raw: []byte("#Fields: date time c-ip cs-method cs-uri-stem"),
					Origin: tokenwatch.Origin{Source: "other"}})
				if err := p.Process(context.Background(), b); err != nil {
					done <- err
					return
				}
				for i := range lines {
					if !reflect.DeepEqual(b.Records[i].Fields, want[i]) {
						done <- errors.New("concurrent parse differs for line " + lines[i])
						return
					}
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
