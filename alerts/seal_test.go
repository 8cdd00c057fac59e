package alerts

import (
	"bytes"
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
