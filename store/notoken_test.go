package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/ingest/parse"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// capture is a send function that keeps a text copy of every inserted value.
type capture struct {
	mu     sync.Mutex
	values map[string][]string // table.column -> values
	rows   map[string]int
}

func (c *capture) send(_ context.Context, t *table, i, j int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, col := range t.cols {
		k := t.name + "." + col.name()
		switch v := col.values(i, j).(type) {
		case []string:
			c.values[k] = append(c.values[k], v...)
		case [][]string:
			for _, a := range v {
				c.values[k] = append(c.values[k], strings.Join(a, "\x00"))
			}
		default: // numbers and times cannot hold a token; render them anyway
			c.values[k] = append(c.values[k], fmt.Sprint(v))
		}
	}
	c.rows[t.name] += j - i
	return nil
}

// TestNoRawTokenInAnyRow plants credentials in auth, app and revocation
// records, runs them through the real scanner and parser, raises an alert
// for every use (evidence and summary as the anomaly engine builds them),
// writes everything through the Writer, and searches every value of every
// column of every table for the planted tokens, whole or in part.
// plantedBatch returns a batch whose records carry planted credentials (a
// JWT in an auth log and an app log, an opaque bearer token, an access_token
// parameter, a token revoked by value), after the real scanner and parser
// ran on it, with an alert per use built as the anomaly engine builds them.
func plantedBatch(t testing.TB) (*tokenwatch.Batch, []string) {
	t.Helper()
	jwt := b64(`{"alg":"RS256","typ":"JWT","kid":"k1"}`) + "." +
		b64(`{"iss":"https://idp.example.com","sub":"alice","aud":"api","exp":4102444800,"iat":1767225600,"jti":"jti-planted-1","client_id":"web","scope":"orders:read orders:write"}`) +
		"." + b64("not-a-real-signature-but-long-enough-0123456789abcdef")
	opaque := "tw0paqueBearerTokenQx7Lm3Np9Rs2Tv5Wy8Za1Bc4De"
	access := "AcCeSsT0kenPlantedInAppLogs9x8y7z6w5v4u3t2s1r"
	revoked := "ReV0kedTokenByValue1a2b3c4d5e6f7g8h9i0jKlMn"
	planted := []string{jwt, opaque, access, revoked}

	records := []struct {
		kind tokenwatch.SourceKind
		raw  string
	}{
		{tokenwatch.KindAuth, `{"time":"2026-11-25T08:00:00Z","remote_addr":"81.2.69.142","method":"GET","path":"/api/orders","status":200,"service":"orders-api","user_agent":"curl/8.5.0","authorization":"Bearer ` + jwt + `"}`},
		{tokenwatch.KindAuth, `81.2.69.142 - - [25/Nov/2026:08:00:01 +0000] "GET /api/orders HTTP/1.1" 200 512 "-" "Mozilla/5.0" "Authorization: Bearer ` + opaque + `"`},
		{tokenwatch.KindApp, `time=2026-11-25T08:00:02Z level=info service=checkout msg="calling payments" url="https://pay.internal/charge?access_token=` + access + `&amount=3"`},
		{tokenwatch.KindApp, `{"ts":"2026-11-25T08:00:03Z","service":"checkout","msg":"retrying with token ` + jwt + `"}`},
		{tokenwatch.KindRevocation, `{"token":"` + revoked + `","time":"2026-11-25T08:00:04Z","reason":"logout"}`},
		{tokenwatch.KindRevocation, `{"jti":"jti-planted-1","iss":"https://idp.example.com","time":"2026-11-25T08:00:05Z"}`},
	}
	b := &tokenwatch.Batch{}
	for i, r := range records {
		b.Records = append(b.Records, tokenwatch.Record{
			Origin: tokenwatch.Origin{Source: "planted", Partition: 0, Offset: int64(i)},
			Raw:    []byte(r.raw), Kind: r.kind,
		})
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	scanner, err := detect.New(detect.WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	parser, err := parse.New(parse.DefaultConfig(), parse.WithFingerprinter(scanner))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := scanner.Process(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := parser.Process(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The planted tokens were found: every one has a use (or revocation) with its fingerprint.
	seen := map[tokenwatch.Fingerprint]bool{}
	for _, u := range b.Uses {
		seen[u.Fingerprint] = true
	}
	for _, r := range b.Revocations {
		seen[r.Fingerprint] = true
	}
	for _, tok := range planted {
		if !seen[scanner.Fingerprint([]byte(tok))] {
			t.Fatalf("planted token %s… was not found by scan+parse; the test would prove nothing", tok[:6])
		}
	}
	// An alert per use, as the anomaly engine builds them.
	for i := range b.Uses {
		u := &b.Uses[i]
		b.Alerts = append(b.Alerts, tokenwatch.Alert{
			ID: fmt.Sprintf("alert-%d", i), Type: tokenwatch.AlertLeakedTokenReplay, Severity: tokenwatch.SeverityHigh,
			Fingerprint: u.Fingerprint.String(), Kind: u.Kind, Redacted: u.Redacted, Service: u.Service,
			EventTime: u.Time, DetectedAt: time.Now(), Evidence: []tokenwatch.Evidence{tokenwatch.EvidenceOf(u)},
			Summary: fmt.Sprintf("Token %s seen in %s.", u.Redacted, u.Service),
		})
	}

	return b, planted
}

// searchPlanted reports every value that holds a planted token, whole or
// any 12-character window of it (a redacted preview keeps at most 6 + 4
// characters), and returns the number of hits.
func searchPlanted(t testing.TB, values map[string][]string, planted []string) int {
	t.Helper()
	hits := 0
	for col, vals := range values {
		for _, v := range vals {
			for _, tok := range planted {
				for k := 0; k+12 <= len(tok); k++ {
					if strings.Contains(v, tok[k:k+12]) {
						hits++
						t.Errorf("%s holds part of a planted token (12 chars at offset %d)", col, k)
						break
					}
				}
			}
		}
	}
	return hits
}

func TestNoRawTokenInAnyRow(t *testing.T) {
	b, planted := plantedBatch(t)
	ctx := context.Background()
	c := &capture{values: map[string][]string{}, rows: map[string]int{}}
	w := newWriter(testConfig(), c.send, nil)
	if err := w.Process(ctx, b); err != nil {
		t.Fatal(err)
	}
	_ = w.AddDeliveries(ctx, Delivery{AlertID: "alert-0", Sink: "soar", SinkKind: "webhook", Attempt: 1, Outcome: "delivered", Time: time.Now()})
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"token_events", "findings", "alerts", "revocations", "deliveries"} {
		if c.rows[table] == 0 {
			t.Errorf("no %s rows written; the search below would not cover that table", table)
		}
	}
	hits := searchPlanted(t, c.values, planted)
	t.Logf("searched %d columns of %v rows: %d hits", len(c.values), c.rows, hits)
}
