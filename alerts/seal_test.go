package alerts

import (
	"bytes"
	"context"
	"testing"

	"github.com/tokenwatch/tokenwatch"
)

func TestSealer(t *testing.T) {
	s := testSealer(t)
	fp := tokenwatch.Fingerprint{1, 2, 3}
	tok := []byte(plantedToken)
	sealed := s.Seal(tok, fp)
	if bytes.Contains(sealed, tok) {
		t.Fatal("sealed value contains the token")
	}
	if again := s.Seal(tok, fp); bytes.Equal(again, sealed) {
		t.Fatal("two seals of one token are equal: nonce not random")
	}
	got, err := s.Open(sealed, fp)
	if err != nil || !bytes.Equal(got, tok) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	for name, f := range map[string]func() ([]byte, error){
		"other fingerprint": func() ([]byte, error) { return s.Open(sealed, tokenwatch.Fingerprint{9}) },
		"other key":         func() ([]byte, error) { return other.Open(sealed, fp) },
		"tampered":          func() ([]byte, error) { b := bytes.Clone(sealed); b[20] ^= 1; return s.Open(b, fp) },
		"truncated":         func() ([]byte, error) { return s.Open(sealed[:10], fp) },
		"version":           func() ([]byte, error) { b := bytes.Clone(sealed); b[0] = 2; return s.Open(b, fp) },
		"empty":             func() ([]byte, error) { return s.Open(nil, fp) },
	} {
		if pt, err := f(); err != ErrSealed || pt != nil {
			t.Errorf("%s: Open = %q, %v; want ErrSealed", name, pt, err)
		}
	}
	if _, err := NewSealer(make([]byte, 16)); err == nil {
		t.Fatal("16-byte key accepted")
	}
}

func FuzzSealerOpen(f *testing.F) {
	s, _ := NewSealer(bytes.Repeat([]byte{7}, 32))
	fp := tokenwatch.Fingerprint{1}
	f.Add(s.Seal([]byte("token"), fp))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{1}, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := s.Open(b, fp)
		if err == nil && !bytes.Equal(pt, []byte("token")) {
			t.Fatalf("forged sealed value opened to %q", pt)
		}
	})
}

func BenchmarkSealOpen(b *testing.B) {
	s, _ := NewSealer(bytes.Repeat([]byte{7}, 32))
	fp := tokenwatch.Fingerprint{1}
	tok := []byte(plantedToken)
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		pt, err := s.Open(s.Seal(tok, fp), fp)
		if err != nil {
			b.Fatal(err)
		}
		clear(pt)
	}
}

func FuzzOAuthError(f *testing.F) {
	for _, s := range []string{`{"error":"unsupported_token_type"}`, `{"err":"invalid_key","description":"x"}`, `{`, ``, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = oauthError(b)
		_ = bodySnippet(b)
	})
}

func TestAppendFormEscapeMatchesNetURL(t *testing.T) {
	for _, s := range []string{plantedToken, "a b+c&d=e/f?g#h%i~j", "ünïcødé", ""} {
		got := string(appendFormEscape(nil, []byte(s)))
		// net/url escapes '~'; RFC 3986 leaves it unreserved. Both decode alike.
		if dec, err := urlUnescape(got); err != nil || dec != s {
			t.Fatalf("escape(%q) = %q decodes to %q, %v", s, got, dec, err)
		}
	}
}

func TestSealStage(t *testing.T) {
	s := testSealer(t)
	c := DefaultConfig()
	c.Sinks = []SinkConfig{{Name: "idp", Type: SinkRFC7009, URL: "https://idp/revoke", Issuer: "https://idp.example", ClientID: "c"}}
	st := NewSealStage(c, s)
	line := []byte("Authorization: Bearer " + plantedToken + " and ghp_0123456789abcdefghijklmnopqrstuvwxyzAB")
	tokStart := len("Authorization: Bearer ")
	tokEnd := tokStart + len(plantedToken)
	b := &tokenwatch.Batch{Records: []tokenwatch.Record{
		{Raw: []byte("clean line")},
		{Raw: line, Findings: []tokenwatch.Finding{
			{Kind: "jwt", Start: tokStart, End: tokEnd, Fingerprint: tokenwatch.Fingerprint{1}, JWT: &tokenwatch.JWTInfo{Iss: "https://idp.example"}},
			{Kind: "jwt", Start: tokStart, End: tokEnd, Fingerprint: tokenwatch.Fingerprint{2}, JWT: &tokenwatch.JWTInfo{Iss: "https://other.example"}},
			{Kind: "github_pat", Start: tokEnd + 5, End: len(line), Fingerprint: tokenwatch.Fingerprint{3}},
		}},
	}}
	if err := st.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	f := b.Records[1].Findings
	if tok, err := s.Open(f[0].Sealed, f[0].Fingerprint); err != nil || string(tok) != plantedToken {
		t.Fatalf("issuer's JWT not sealed to the token: %v", err)
	}
	if f[1].Sealed != nil || f[2].Sealed != nil {
		t.Fatal("sealed a credential no rfc7009 sink revokes")
	}
	if NewSealStage(DefaultConfig(), nil) != nil {
		t.Fatal("seal stage without rfc7009 sinks")
	}
}

func TestSealStageCleanBatchAllocatesNothing(t *testing.T) {
	c := DefaultConfig()
	c.Sinks = []SinkConfig{{Name: "idp", Type: SinkRFC7009, URL: "https://idp/revoke", MatchAnyIssuer: true, ClientID: "c"}}
	st := NewSealStage(c, testSealer(t))
	b := &tokenwatch.Batch{}
	for range 256 {
		b.Records = append(b.Records, tokenwatch.Record{Raw: []byte("GET /healthz 200")})
	}
	if n := testing.AllocsPerRun(100, func() { st.Process(context.Background(), b) }); n != 0 {
		t.Fatalf("%v allocations per clean batch", n)
	}
}
