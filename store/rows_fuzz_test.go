package store

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// FuzzInsertStatements: log fields are attacker-controlled (user agents,
// paths, services); whatever they hold, every JSONEachRow line stays one
// valid JSON object with one key per column, and the row count is right.
func FuzzInsertStatements(f *testing.F) {
	for _, s := range []string{"", "curl/8", "a'b\"c\\d", "line\nbreak;\nINSERT", "\x00\xff\xfe", "ünïcødé ☃", strings.Repeat("x", 5000)} {
		f.Add(s, s+"/p", int64(1700000000))
	}
	f.Fuzz(func(t *testing.T, ua, path string, ts int64) {
		r := NewRows()
		b := &tokenwatch.Batch{Uses: []tokenwatch.TokenUse{{
			Kind: "jwt", UserAgent: ua, Path: path, Service: ua, Time: time.Unix(ts%4e9, 0),
			IP: netip.MustParseAddr("2001:db8::1"), Leak: true, JWT: &tokenwatch.JWTInfo{Aud: []string{ua, path}, Scope: []string{path}},
			Origin: tokenwatch.Origin{Source: path, Partition: 1, Offset: ts},
		}}}
		if err := r.AddBatch(b); err != nil {
			t.Fatal(err)
		}
		stmts, err := r.InsertStatements("db")
		if err != nil {
			t.Fatal(err)
		}
		if len(stmts) != 2 { // token_events and findings
			t.Fatalf("%d statements", len(stmts))
		}
		for i, s := range stmts {
			head, data, ok := strings.Cut(s, "FORMAT JSONEachRow\n")
			if !ok || strings.Contains(head, "\n") {
				t.Fatalf("statement %d header %q", i, head)
			}
			sc := bufio.NewScanner(strings.NewReader(data))
			sc.Buffer(nil, 1<<24)
			lines := 0
			for sc.Scan() {
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("statement %d line %d is not JSON: %v", i, lines, err)
				}
				want := len(r.tables()[i].cols)
				if len(m) != want {
					t.Fatalf("statement %d: %d keys, want %d", i, len(m), want)
				}
				lines++
			}
			if lines != 1 {
				t.Fatalf("statement %d: %d data lines, want 1", i, lines)
			}
		}
	})
}
