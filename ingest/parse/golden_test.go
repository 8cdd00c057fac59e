package parse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenRecord is the golden form of one parsed record.
type goldenRecord struct {
	Line    int      `json:"line"`
	Format  string   `json:"format"`
	Time    string   `json:"time,omitempty"`
	IP      string   `json:"ip,omitempty"`
	UA      string   `json:"user_agent,omitempty"`
	User    string   `json:"user,omitempty"`
	Method  string   `json:"method,omitempty"`
	Path    string   `json:"path,omitempty"`
	Status  int      `json:"status,omitempty"`
	Service string   `json:"service,omitempty"`
	Host    string   `json:"host,omitempty"`
	DPoP    bool     `json:"dpop,omitempty"`
	Headers bool     `json:"headers_logged,omitempty"`
	Flags   []string `json:"flags,omitempty"`
}

func goldenOf(line int, r *tokenwatch.Record) goldenRecord {
	f := r.Fields
	g := goldenRecord{Line: line, Format: f.Format, UA: f.UserAgent, User: f.User, Method: f.Method, Path: f.Path,
		Status: f.Status, Service: f.Service, Host: f.Host, DPoP: f.DPoPProof, Headers: f.HeadersLogged}
	if !f.Time.IsZero() {
		g.Time = f.Time.UTC().Format(time.RFC3339Nano)
	}
	if f.IP.IsValid() {
		g.IP = f.IP.String()
	}
	for _, fl := range []struct {
		f    tokenwatch.RecordFlags
		name string
	}{{tokenwatch.FlagMalformed, "malformed"}, {tokenwatch.FlagTruncated, "truncated"}, {tokenwatch.FlagBinary, "binary"}, {tokenwatch.FlagInvalidUTF8, "invalid_utf8"}} {
		if r.Flags&fl.f != 0 {
			g.Flags = append(g.Flags, fl.name)
		}
	}
	return g
}

// goldenInputs returns the lines of testdata/records.txt.
func goldenInputs(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile("testdata/records.txt")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// TestGolden parses testdata/records.txt line by line as one source (so #Fields:
// headers apply to the lines after them) and compares with testdata/records.golden.
// Run with -update after a deliberate change and review the diff.
func TestGolden(t *testing.T) {
	p := newTestParser(t, DefaultConfig())
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	for i, line := range goldenInputs(t) {
		r := tokenwatch.Record{Raw: []byte(line), Origin: tokenwatch.Origin{Source: "records.txt", Partition: -1, Offset: int64(i + 1)}}
		if strings.HasPrefix(line, "#") {
			p.iis.observe(r.Origin.Source, r.Raw)
		}
		p.Parse(&r)
		if err := enc.Encode(goldenOf(i+1, &r)); err != nil {
			t.Fatal(err)
		}
	}
	const golden = "testdata/records.golden"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	gotLines := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	wantLines := bufio.NewScanner(bytes.NewReader(want))
	for n := 1; ; n++ {
		g, w := gotLines.Scan(), wantLines.Scan()
		if !g && !w {
			break
		}
		if gotLines.Text() != wantLines.Text() {
			t.Errorf("record %d:\n got  %s\n want %s", n, gotLines.Text(), wantLines.Text())
		}
	}
}
