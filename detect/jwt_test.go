package detect

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch"
)

func TestDecodeJWT(t *testing.T) {
	cases := []struct {
		name   string
		token  string
		want   *tokenwatch.JWTInfo
		err    error
		before func(*tokenwatch.JWTInfo)
	}{
		{"hs256", jwtHS, &tokenwatch.JWTInfo{Alg: "HS256", Typ: "JWT", Sub: "1234567890", Iat: 1516239022}, nil, nil},
		{"access token", jwtRS, &tokenwatch.JWTInfo{
			Alg: "RS256", Kid: "k1", Typ: "at+jwt", Iss: "https://idp.example.com", Sub: "alice", Aud: []string{"api", "web"},
			Exp: 1767229200, Iat: 1767225600, Jti: "j-1", ClientID: "web", Scope: []string{"read", "write"}, LifetimeSeconds: 3600,
		}, nil, nil},
		{"alg none expired", jwtNone, &tokenwatch.JWTInfo{Alg: "none", Sub: "mallory", Exp: 1000, AlgNone: true, Expired: true}, nil, nil},
		{"alg None case", mkJWT(`{"alg":"None"}`, `{}`, ""), &tokenwatch.JWTInfo{Alg: "None", AlgNone: true}, nil, nil},
		{"aud string, azp, scp array, float and string times", mkJWT(`{"alg":"ES256"}`,
			`{"aud":"api","azp":"mobile","scp":["a","b"],"exp":1767229200.9,"iat":"1767225600","nbf":1767225500}`, sig43),
			&tokenwatch.JWTInfo{Alg: "ES256", Aud: []string{"api"}, ClientID: "mobile", Scope: []string{"a", "b"}, Exp: 1767229200, Iat: 1767225600, Nbf: 1767225500, LifetimeSeconds: 3600}, nil, nil},
		{"scp string", mkJWT(`{"alg":"ES256"}`, `{"scp":"x y  z"}`, sig43), &tokenwatch.JWTInfo{Alg: "ES256", Scope: []string{"x", "y", "z"}}, nil, nil},
		{"client_id wins over azp", mkJWT(`{"alg":"ES256"}`, `{"client_id":"c","azp":"a"}`, sig43), &tokenwatch.JWTInfo{Alg: "ES256", ClientID: "c"}, nil, nil},
		{"id token markers and cnf", mkJWT(`{"alg":"PS256"}`, `{"nonce":"n","at_hash":"h","cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I","x5t#S256":"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}`, sig43),
			&tokenwatch.JWTInfo{Alg: "PS256", HasNonce: true, HasAtHash: true, CnfJKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", CnfX5T: "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}, nil, nil},
		{"not expired", mkJWT(`{"alg":"HS256"}`, `{"exp":4102444800}`, sig43), &tokenwatch.JWTInfo{Alg: "HS256", Exp: 4102444800}, nil, nil},
		{"jwe", jwe5, &tokenwatch.JWTInfo{Alg: "RSA-OAEP-256", Enc: "A256GCM", Kid: "e1"}, nil, nil},
		{"padded std alphabet", base64.StdEncoding.EncodeToString([]byte(`{"alg":"HS256","ab":1}`)) + "." + base64.StdEncoding.EncodeToString([]byte(`{"sub":"s"}`)) + "." + sig43,
			&tokenwatch.JWTInfo{Alg: "HS256", Sub: "s"}, nil, nil},
		{"non-json payload", b64u(`{"alg":"HS256"}`) + "." + b64u("hello") + "." + sig43, &tokenwatch.JWTInfo{Alg: "HS256"}, nil, nil},
		{"bad claims", b64u(`{"alg":"HS256"}`) + "." + b64u(`{"sub":`) + "." + sig43, nil, ErrJWTClaims, nil},
		{"no alg", mkJWT(`{"typ":"JWT"}`, `{}`, sig43), nil, ErrJWTHeader, nil},
		{"alg not string", mkJWT(`{"alg":1}`, `{}`, sig43), nil, ErrJWTHeader, nil},
		{"header not json", b64u("nope") + "." + b64u(`{}`) + "." + sig43, nil, ErrJWTHeader, nil},
		{"bad base64", "eyJ!!!.e30." + sig43, nil, ErrJWTBase64, nil},
		{"two parts", b64u(`{"alg":"HS256"}`) + "." + b64u(`{}`), nil, ErrJWTFormat, nil},
		{"four parts", jwtHS + ".x", nil, ErrJWTFormat, nil},
		{"jwe without enc", b64u(`{"alg":"dir"}`) + ".a.b.c.d", nil, ErrJWTHeader, nil},
		{"giant header", b64u(`{"alg":"HS256","x":"`+strings.Repeat("a", MaxJWTHeaderLen)+`"}`) + ".e30." + sig43, nil, ErrJWTSize, nil},
		{"empty header", ".e30." + sig43, nil, ErrJWTFormat, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeJWT([]byte(c.token), testNow)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestDecodeJWTErrorsDoNotLeak: errors never carry token bytes.
func TestDecodeJWTErrorsDoNotLeak(t *testing.T) {
	tok := b64u(`{"alg":"HS256"}`) + "." + b64u(`{"sub":`) + ".SECRETSIGNATURE"
	_, err := DecodeJWT([]byte(tok), testNow)
	if err == nil || strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "eyJ") {
		t.Fatalf("err = %v", err)
	}
}

func TestB64Decode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"", "", true},
		{"YQ", "a", true},
		{"YQ==", "a", true},
		{"YWI", "ab", true},
		{"YWI=", "ab", true},
		{"YWJj", "abc", true},
		{"-_-_", "\xfb\xff\xbf", true},
		{"+/+/", "\xfb\xff\xbf", true},
		{"Y", "", false},
		{"YQ=", "", false},
		{"YQ===", "", false},
		{"Y!==", "", false},
	} {
		got, ok := b64Decode(nil, []byte(c.in))
		if ok != c.ok || (ok && string(got) != c.want) {
			t.Errorf("b64Decode(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{jwtHS, "eyJhbG…sw5c"},
		{"abcdefghijklmnopqrstuvwx", "abcdef…uvwx"},
		{"abcdefghijklmnopqrstuvw", "abc…vw"},
		{"abcdefghijkl", "abc…kl"},
		{"abcdefghijk", "…"},
		{"", "…"},
		{"ab\x00\xffdefghijklmnopqrstuvwxyz", "ab??de…wxyz"},
	} {
		if got := Redact([]byte(c.in)); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestRedactedPreviewIsNotAFinding: tokenwatch's own previews and markers never
// trigger a finding.
func TestRedactedPreviewIsNotAFinding(t *testing.T) {
	s := newTestScanner(t)
	for _, tok := range []string{jwtHS, jwtRS, "2YotnFZFEjr1zCsicMWpAA", ghToken("ghp_", "abcdefghijklmnopqrstuvwxyz0123"), "AKIAQYLPMN5HHHFPZAM2"} {
		fs := s.Scan([]byte(tok), nil)
		p := Redact([]byte(tok))
		for _, line := range []string{
			"Authorization: Bearer " + p, "access_token=" + p, `{"id_token":"` + p + `"}`, "Cookie: session=" + p, p,
		} {
			if got := s.Scan([]byte(line), nil); len(got) != 0 {
				t.Errorf("preview line %q: got %s", line, describe(got))
			}
		}
		for _, f := range fs {
			marker := "[REDACTED:" + f.Kind + ":" + f.Fingerprint.String()[:8] + "]"
			for _, line := range []string{"Authorization: Bearer " + marker, "access_token=" + marker, marker, `{"token":"` + marker + `"}`} {
				if got := s.Scan([]byte(line), nil); len(got) != 0 {
					t.Errorf("marker line %q: got %s", line, describe(got))
				}
			}
		}
	}
}
