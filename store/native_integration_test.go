//go:build integration

package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
	. "github.com/tokenwatch/tokenwatch/store"
	"github.com/tokenwatch/tokenwatch/store/storetest"
)

// native18 connects to the test clickhouse-server 18.16 and creates a fresh
// database with the 18.16 variant of the schema (testdata/clickhouse18).
func native18(t testing.TB) (Config, driver.Conn) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = []string{testenv.ClickHouseAddr(t)}
	cfg.Database = fmt.Sprintf("tw_it_%d_%d", time.Now().UnixNano()%1e9, rand.IntN(1000))
	cfg.RetryInitial = 50 * time.Millisecond
	cfg.RetryMax = time.Second
	cfg.DialTimeout = 2 * time.Second
	conn, err := Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
		_ = conn.Close()
	})
	src, err := os.ReadFile("testdata/clickhouse18/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range strings.Split(strings.ReplaceAll(string(src), "{{db}}", cfg.Database), ";\n") {
		if s = strings.TrimSpace(stripLineComments(s)); s != "" {
			if err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("18.16 schema: %v\n%s", err, s)
			}
		}
	}
	return cfg, conn
}

func count18(t testing.TB, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestWriterNative18(t *testing.T) {
	cfg, conn := native18(t)
	w := NewWriter(cfg, conn, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	ds := storetest.Generate(time.Now())
	for i := range ds.Batches {
		if err := w.Process(ctx, &ds.Batches[i]); err != nil {
			t.Fatalf("Process batch %d: %v", i, err)
		}
	}
	if err := w.AddDeliveries(ctx, ds.Deliveries...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Pending() != 0 {
		t.Fatalf("%d rows still pending after Close", w.Pending())
	}
	db := cfg.Database
	for q, want := range map[string]int{
		"SELECT count() FROM " + db + ".token_events FINAL": ds.Uses,
		"SELECT count() FROM " + db + ".findings FINAL":     ds.Leaks,
		"SELECT uniqExact(id) FROM " + db + ".alerts":       ds.Alerts - 5, // 5 re-raises share their id
		"SELECT count() FROM " + db + ".alerts":             ds.Alerts,
		"SELECT count() FROM " + db + ".revocations FINAL":  ds.Revocations,
		"SELECT count() FROM " + db + ".deliveries FINAL":   len(ds.Deliveries),
	} {
		if got := count18(t, conn, q); got != uint64(want) {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
	// Values round-trip: the travel token's Sydney use.
	var city, ip, country string
	var lat float64
	var aud []string
	fp := storetest.FP(storetest.TravelToken).String()
	err := conn.QueryRow(ctx, "SELECT city, ip, country, lat, aud FROM "+db+".token_events WHERE fingerprint = ? ORDER BY event_time DESC LIMIT 1", fp).
		Scan(&city, &ip, &country, &lat, &aud)
	if err != nil {
		t.Fatal(err)
	}
	if city != "Sydney" || ip != "1.128.0.1" || country != "AU" || lat != -33.8688 || len(aud) != 1 {
		t.Errorf("travel token row = %q %q %q %v %v", city, ip, country, lat, aud)
	}
	// Replaying every batch (a crash before the offset commit) changes
	// nothing once deduplicated.
	w2 := NewWriter(cfg, conn, nil)
	for i := range ds.Batches {
		if err := w2.Process(ctx, &ds.Batches[i]); err != nil {
			t.Fatal(err)
		}
	}
	_ = w2.Close(ctx)
	if got := count18(t, conn, "SELECT count() FROM "+db+".token_events FINAL"); got != uint64(ds.Uses) {
		t.Errorf("after replay token_events FINAL = %d, want %d", got, ds.Uses)
	}
	// Merge every partition (OPTIMIZE without PARTITION merges only one on
	// 18.16), so the copies are folded physically, not only by FINAL.
	prows, err := conn.Query(ctx, "SELECT DISTINCT partition FROM system.parts WHERE database = ? AND table = 'token_events' AND active", db)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for prows.Next() {
		var p string
		if err := prows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	prows.Close()
	for _, p := range parts {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+db+".token_events PARTITION "+p+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	if got := count18(t, conn, "SELECT count() FROM "+db+".token_events"); got != uint64(ds.Uses) {
		t.Errorf("after replay and OPTIMIZE FINAL token_events = %d rows, want %d", got, ds.Uses)
	}
}

// streamBatch returns batch i of a synthetic stream of n uses per batch.
func streamBatch(i, n int, base time.Time) tokenwatch.Batch {
	var b tokenwatch.Batch
	for k := range n {
		fp := storetest.FP(fmt.Sprintf("stream-%d", (i*n+k)%5000))
		b.Uses = append(b.Uses, tokenwatch.TokenUse{
			Fingerprint: fp, Kind: "jwt", Rule: "authorization.bearer", Redacted: "eyJhbG…abcd",
			Time: base.Add(time.Duration(i*n+k) * time.Millisecond), IP: netip.AddrFrom4([4]byte{81, 2, 69, byte(k)}),
			Geo:       tokenwatch.Geo{ASN: 3320, ASOrg: "Deutsche Telekom AG", Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.4, HasLocation: true},
			UserAgent: "curl/8.5.0", Method: "GET", Path: "/api/v1/orders", Status: 200, Service: "orders-api",
			JWT:    &tokenwatch.JWTInfo{Alg: "RS256", Iss: "https://idp.example.com", Sub: "u1", Jti: fmt.Sprint("j", k), ClientID: "web", Scope: []string{"a", "b"}},
			Origin: tokenwatch.Origin{Source: "auth-logs", Partition: int32(k % 3), Offset: int64(i*n + k)},
		})
	}
	return b
}

// TestWriterSurvivesRestart streams batches while the server is stopped and
// started again: every Process call eventually succeeds, and the table holds
// every row exactly once after deduplication.
func TestWriterSurvivesRestart(t *testing.T) {
	cfg, conn := native18(t)
	w := NewWriter(cfg, conn, nil)
	const batches, per = 60, 1000
	base := time.Now().Add(-time.Hour).UTC()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	errBefore := insertErrorsTotal(t, "token_events")

	var wg sync.WaitGroup
	processed := make(chan int, batches)
	stopped := make(chan struct{})
	var procErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range batches {
			if i == 2*batches/3 {
				// However fast the machine, the last third is written
				// after the server went down.
				select {
				case <-stopped:
				case <-ctx.Done():
				}
			}
			b := streamBatch(i, per, base)
			if err := w.Process(ctx, &b); err != nil {
				procErr = fmt.Errorf("batch %d: %w", i, err)
				return
			}
			processed <- i
		}
	}()
	// Let a third of the stream land, then take the server down.
	for n := 0; n < batches/3; n++ {
		select {
		case <-processed:
		case <-ctx.Done():
			t.Fatal("stream did not start")
		}
	}
	testenv.StopClickHouse(t)
	close(stopped)
	// Wait until the writer has seen the outage (a failed attempt).
	deadline := time.Now().Add(time.Minute)
	for insertErrorsTotal(t, "token_events") == errBefore {
		if time.Now().After(deadline) {
			testenv.StartClickHouse(t)
			t.Fatal("no insert failed while the server was stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	testenv.StartClickHouse(t)
	wg.Wait()
	if procErr != nil {
		t.Fatalf("Process failed across the restart: %v", procErr)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db := cfg.Database
	total := uint64(batches * per)
	if got := count18(t, conn, "SELECT uniqExact(row_id) FROM "+db+".token_events"); got != total {
		t.Fatalf("distinct rows after restart = %d, want %d (rows lost)", got, total)
	}
	raw := count18(t, conn, "SELECT count() FROM "+db+".token_events")
	if got := count18(t, conn, "SELECT count() FROM "+db+".token_events FINAL"); got != total {
		t.Errorf("rows FINAL = %d, want %d", got, total)
	}
	t.Logf("restart test: %d rows stored, %d raw rows before dedupe (%d duplicates from retried inserts), %v insert errors",
		total, raw, raw-total, insertErrorsTotal(t, "token_events")-errBefore)
}

// BenchmarkWriterNative18 measures inserted rows per second into
// clickhouse-server 18.16 over the native protocol, 10,000 uses per batch.
func BenchmarkWriterNative18(b *testing.B) {
	cfg, conn := native18(b)
	w := NewWriter(cfg, conn, nil)
	defer w.Close(context.Background())
	const per = 10_000
	batches := make([]tokenwatch.Batch, 8)
	for i := range batches {
		batches[i] = streamBatch(i, per, time.Now().Add(-time.Hour))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.Process(ctx, &batches[i%len(batches)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "rows/s")
}

// insertErrorsTotal reads tokenwatch_store_insert_errors_total{table} from
// the default registry.
func insertErrorsTotal(t testing.TB, table string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tokenwatch_store_insert_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" && l.GetValue() == table {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestWriterNative18OddStrings: log fields are arbitrary bytes; the native
// protocol stores them exactly (quotes, newlines, NUL, invalid UTF-8, long).
func TestWriterNative18OddStrings(t *testing.T) {
	cfg, conn := native18(t)
	w := NewWriter(cfg, conn, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	odd := []string{"a'b\"c\\d", "line\nbreak;\nDROP TABLE x", "\x00\xff\xfe", "ünïcødé ☃", strings.Repeat("x", 100_000), ""}
	b := streamBatch(0, len(odd), time.Now().Add(-time.Minute))
	for i, s := range odd {
		b.Uses[i].UserAgent = s
		b.Uses[i].JWT.Scope = []string{s, "z"}
	}
	if err := w.Process(ctx, &b); err != nil {
		t.Fatal(err)
	}
	_ = w.Close(ctx)
	for i, s := range odd {
		var ua string
		var scope []string
		err := conn.QueryRow(ctx, "SELECT user_agent, scope FROM "+cfg.Database+".token_events WHERE row_id = ?", RowID(b.Uses[i].Origin, 0)).Scan(&ua, &scope)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if ua != s || len(scope) != 2 || scope[0] != s {
			t.Errorf("row %d: stored %q / %q, want %q", i, truncate(ua), scope, truncate(s))
		}
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
