package pipeline

import (
	"bytes"
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

const secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVlLWhlcmU"

func sinkBatch() *tokenwatch.Batch {
	fp, _ := tokenwatch.ParseFingerprint("00112233445566778899aabbccddeeff")
	fp2, _ := tokenwatch.ParseFingerprint("ffeeddccbbaa99887766554433221100")
	jwt := &tokenwatch.JWTInfo{Alg: "HS256", Sub: "alice", Exp: 1767322800, Expired: true}
	raw1 := []byte(`GET /api?access_token=` + secret + ` HTTP/1.1`)
	raw3 := []byte(`Authorization: Bearer ` + secret)
	b := &tokenwatch.Batch{Records: []tokenwatch.Record{
		{
			Origin: tokenwatch.Origin{Source: "/var/log/app.log", Partition: -1, Offset: 12},
			Raw:    raw1, Kind: tokenwatch.KindApp,
			Findings: []tokenwatch.Finding{{Kind: "jwt", Rule: "jwt.compact", Start: 22, End: 22 + len(secret), Fingerprint: fp, Redacted: "eyJhbG…ZXJl", Param: "access_token", JWT: jwt}},
			Parsed:   true,
			Fields:   tokenwatch.Fields{Format: "plain", Method: "GET", Path: "/api"},
			Flags:    tokenwatch.FlagTruncated,
		},
		{Origin: tokenwatch.Origin{Source: "/var/log/app.log", Partition: -1, Offset: 13}, Raw: []byte("clean line"), Kind: tokenwatch.KindApp},
		{
			Origin: tokenwatch.Origin{Source: "gateway-logs", Partition: 3, Offset: 4711},
			Raw:    raw3, Kind: tokenwatch.KindAuth,
			Findings: []tokenwatch.Finding{
				{Kind: "jwt", Rule: "authorization.bearer", Start: 22, End: 22 + len(secret), Fingerprint: fp, Redacted: "eyJhbG…ZXJl", Scheme: "Bearer", JWT: jwt},
				{Kind: "github_pat", Rule: "github.classic_pat", Start: 0, End: 4, Fingerprint: fp2, Redacted: "ghp_…"},
			},
		},
	}}
	b.Uses = []tokenwatch.TokenUse{{
		Fingerprint: fp, Kind: "jwt", Rule: "authorization.bearer",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)),
		IP:   netip.MustParseAddr("203.0.113.9"), UserAgent: "curl/8.5", Status: 200, Service: "gateway", Method: "GET", Path: "/orders",
		Geo:    tokenwatch.Geo{ASN: 64500, Country: "NL", City: "Amsterdam"},
		Origin: b.Records[2].Origin, Index: 0, JWT: jwt,
	}}
	return b
}

func TestSinkGolden(t *testing.T) {
	var out bytes.Buffer
	s := NewSink(&out)
	if err := s.Process(context.Background(), sinkBatch()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "c2lnbmF0dXJl") {
		t.Fatal("sink output contains the raw token")
	}
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Fatalf("%d lines, want one per finding (3)", n)
	}
	golden := filepath.Join("testdata", "sink.golden.jsonl")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("sink output differs from %s (go test -update to accept):\n%s", golden, out.String())
	}
}

func TestOpenSinkAppendsAndFsyncs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "findings.jsonl")
	for range 2 {
		s, err := OpenSink(OutputConfig{FindingsFile: path, Fsync: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Process(context.Background(), sinkBatch()); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != 6 {
		t.Fatalf("%d lines after two runs, want 6 (appended, not truncated)", n)
	}
	if s, err := OpenSink(OutputConfig{}, nil); s != nil || err != nil {
		t.Fatalf("no findings file: got %v, %v", s, err)
	}
}

func TestOpenSinkTerminatesCutLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "findings.jsonl")
	if err := os.WriteFile(path, []byte(`{"source":"x","li`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSink(OutputConfig{FindingsFile: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Process(context.Background(), sinkBatch()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 4 || lines[0] != `{"source":"x","li` || !strings.HasPrefix(lines[1], `{"source":"/var/log/app.log"`) {
		t.Fatalf("lines after a cut line: %q", lines)
	}
}

func TestOutputConfigValidate(t *testing.T) {
	if err := (OutputConfig{FindingsFile: "-", Fsync: true}).Validate(); err == nil || !strings.Contains(err.Error(), "output.fsync") {
		t.Fatalf("Validate = %v", err)
	}
}
