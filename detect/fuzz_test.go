package detect

import (
	"bytes"
	"reflect"
	"testing"
)

func scanSeeds(f *testing.F) {
	for _, rc := range ruleCases {
		for _, l := range append(append([]string{}, rc.tp...), rc.fp...) {
			f.Add([]byte(l))
		}
	}
	g := newCorpusGen(3)
	for range 20 {
		f.Add([]byte(g.cleanLine()))
		f.Add([]byte(g.credLine()))
	}
	f.Add([]byte("Bearer%20" + jwtHS + "%26"))
	f.Add([]byte(`{"t":"` + jwtHS[:30] + `\u002e` + jwtHS[31:] + `"}`))
	// Command lines: quoting, clusters, several commands, unclosed quotes.
	for _, l := range []string{
		`curl -H 'Authorization: Bearer 2YotnFZFEjr1zCsicMWpAA' -u svc:hK9mQ2xZ https://x && wget --user=a --password=wonderland42 y`,
		`{"log":"+ curl -u \"svc:hK9mQ2xZ\" https://x\n+ wget --http-password 'p w0rd!' y"}`,
		`curl -sSu 'alice:unclosed`, `curl -u "a:b`, `curl -u \"a:b`, `curl --user=`, `curl -u`, `wget --password`,
		"curl -u alice:wonderland42\r", "curl curl curl -u a:Passw0rd1 curl -u b:Passw0rd2",
		"curl -u x-access-token:" + ghToken("ghs_", "0123456789abcdefghijABCDEFGHIJ") + " -u t:" + jwtHS,
		// URL userinfo: encodings, several '@', no host, JSON, known tokens.
		"postgres://app:p%40ss%3Aw0rd@db:5432/x redis://:r3d1sPassw0rd@h mongodb+srv://u:Xk9vQ2mZ7w@c/",
		`{"dsn":"amqp://svc:Rabb1tMQ-pw@rabbit/","u":"http://[::1]:8080/a@b"}`,
		"https://u:p@ss@w0rd@host", "x://a:b@", "://:@", "s://:S3cr3tPw@[::1]:5432", "http://h:8080@evil/",
		"https://x-access-token:" + ghToken("ghp_", "0123456789abcdefghijABCDEFGHIJ") + "@github.com/o/r.git",
		"wss://t:" + jwtHS + "@h", "postgres://app:%zz%4@db", "ftp://a:[REDACTED:url_password:1a2b3c4d]@h",
	} {
		f.Add([]byte(l))
	}
}

// FuzzScan: no panic; findings in bounds, ordered, non-overlapping; scanning is
// deterministic; and replacing every finding by its redaction marker leaves
// nothing to find at those spans.
func FuzzScan(f *testing.F) {
	scanSeeds(f)
	s, err := New(WithKey(testKey), WithMaxTokenLen(256))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		fs := s.Scan(line, nil)
		if !bytes.Equal(line, orig) {
			t.Fatal("Scan modified its input")
		}
		prev := 0
		for _, fd := range fs {
			if fd.Start < prev || fd.Start >= fd.End || fd.End > len(line) {
				t.Fatalf("bad span [%d:%d) after %d in %d bytes", fd.Start, fd.End, prev, len(line))
			}
			if fd.End-fd.Start > 3*256 {
				t.Fatalf("span longer than 3x max token length: %d", fd.End-fd.Start)
			}
			if fd.Kind == "" || fd.Rule == "" || fd.Fingerprint.IsZero() || fd.Redacted == "" {
				t.Fatalf("incomplete finding %+v", fd)
			}
			prev = fd.End
		}
		if again := s.Scan(line, nil); !reflect.DeepEqual(again, fs) {
			t.Fatalf("not deterministic: %s vs %s", describe(fs), describe(again))
		}
		if len(fs) == 0 {
			return
		}
		// Redact and rescan.
		var red []byte
		var spans [][2]int
		last := 0
		for _, fd := range fs {
			red = append(red, line[last:fd.Start]...)
			st := len(red)
			red = append(red, "[REDACTED:"+fd.Kind+":"+fd.Fingerprint.String()[:8]+"]"...)
			spans = append(spans, [2]int{st, len(red)})
			last = fd.End
		}
		red = append(red, line[last:]...)
		for _, fd := range s.Scan(red, nil) {
			for _, sp := range spans {
				if fd.Start < sp[1] && fd.End > sp[0] {
					t.Fatalf("finding %s[%d:%d] inside redaction marker [%d:%d] of %q", fd.Rule, fd.Start, fd.End, sp[0], sp[1], red)
				}
			}
		}
	})
}

// FuzzDecodeJWT: no panic on any input; a success always has an alg and
// bounded strings.
func FuzzDecodeJWT(f *testing.F) {
	for _, tok := range []string{jwtHS, jwtRS, jwtNone, jwe5, "a.b.c", "eyJ.eyJ.", "....", "e30.e30.e30"} {
		f.Add([]byte(tok))
	}
	f.Fuzz(func(t *testing.T, tok []byte) {
		info, err := DecodeJWT(tok, testNow)
		if err != nil {
			if info != nil {
				t.Fatal("info with error")
			}
			return
		}
		if info.Alg == "" {
			t.Fatal("decoded without alg")
		}
		for _, s := range []string{info.Alg, info.Kid, info.Typ, info.Iss, info.Sub, info.Jti, info.ClientID} {
			if len(s) > maxClaimString {
				t.Fatalf("claim of %d bytes", len(s))
			}
		}
		if len(info.Aud) > 64 || len(info.Scope) > 64 {
			t.Fatal("unbounded list")
		}
	})
}
