package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func sampleData() Data {
	t0 := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	p, o := int32(3), int64(1200)
	return Data{
		Title:       "tokenwatch demo",
		Subtitle:    "12,345 records scanned",
		GeneratedAt: t0.Add(time.Hour),
		Stats:       []Stat{{"records", "12,345"}, {"alerts", "3"}},
		Alerts: []tokenwatch.Alert{
			{ID: "a1", Type: tokenwatch.AlertImpossibleTravel, Severity: tokenwatch.SeverityHigh, Fingerprint: "0123456789abcdef0123456789abcdef", Redacted: "eyJhbG…Qssw",
				EventTime: t0.Add(20 * time.Minute), Summary: "Token used in London and 20 minutes later in Sydney <b>fast</b>.",
				Evidence: []tokenwatch.Evidence{
					{Time: t0, IP: "81.2.69.1", City: "London", Country: "GB", Lat: 51.5074, Lon: -0.1278, ASN: 2856, ASOrg: "BT", Topic: "auth", Partition: &p, Offset: &o},
					{Time: t0.Add(20 * time.Minute), IP: "1.128.0.1", City: "Sydney", Country: "AU", Lat: -33.8688, Lon: 151.2093, ASN: 1221, ASOrg: "Telstra"},
				}},
			{ID: "a2", Type: tokenwatch.AlertTokenLeak, Severity: tokenwatch.SeverityMedium, Fingerprint: "fedcba9876543210fedcba9876543210", Redacted: "d3h4fr…jTAs",
				EventTime: t0.Add(5 * time.Minute), Summary: "A bearer token was written to the log of billing-api."},
			{ID: "a3", Type: tokenwatch.AlertAlgNoneAccepted, Severity: tokenwatch.SeverityCritical, Fingerprint: "00000000000000000000000000000001",
				EventTime: t0.Add(50 * time.Minute), Summary: "An unsigned JWT was accepted."},
			{ID: "p1", Type: "audience_mismatch", Severity: tokenwatch.SeverityLow, Fingerprint: "00000000000000000000000000000002",
				EventTime: t0.Add(55 * time.Minute), Summary: "A token for audience api was presented to billing."},
			{ID: "p2", Type: "audience_mismatch", Severity: tokenwatch.SeverityLow, Fingerprint: "00000000000000000000000000000003",
				EventTime: t0.Add(56 * time.Minute), Summary: "Another audience mismatch."},
		},
		LeaksPerService: []Count{{"billing-api", 3}, {"notifier", 5}},
		FindingsPerKind: []Count{{"jwt", 900}, {"bearer", 40}},
	}
}

func TestWriteGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, sampleData()); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.html")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("report differs from %s; run go test ./report -update and review the diff", golden)
	}
}

func TestWriteContents(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, sampleData()); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{
		"<title>tokenwatch demo</title>",
		`class="land" d="M`,       // the world outline
		"&lt;b&gt;fast&lt;/b&gt;", // summaries are escaped
		"impossible_travel (1)",   // legend
		"billing-api", "notifier", // leak bars
		"0123456789abcdef0123456789abcdef", // fingerprints in the table
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(html, "<b>fast</b>") {
		t.Error("summary HTML was not escaped")
	}
	// London (51.5N, 0.1W) and Sydney (33.9S, 151.2E) are plotted where an
	// equirectangular 1000x500 projection puts them, and joined by a line.
	for _, want := range []string{`cx="499.6" cy="106.9"`, `cx="920.0" cy="344.1"`, `<line x1="499.6" y1="106.9" x2="920.0" y2="344.1"`} {
		if !strings.Contains(html, want) {
			t.Errorf("map lacks %s", want)
		}
	}
	// The leak-only and alg-none alerts have no place on the map.
	if n := strings.Count(html, "<circle cx=") - strings.Count(html, `r="6"`); n != 2 {
		t.Errorf("map has %d points, want 2", n)
	}
}

func TestWriteEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, Data{Title: "nothing"}); err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(buf.String(), "No alerts."); c != 2 {
		t.Errorf("empty report shows 'No alerts.' %d times, want 2 (map section has none, timeline and table do)", c)
	}
	if !strings.Contains(buf.String(), "No token hygiene findings.") {
		t.Error("empty report lacks the empty hygiene section")
	}
}
