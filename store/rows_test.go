package store

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

func TestRowIDDeterministic(t *testing.T) {
	o := tokenwatch.Origin{Source: "auth-logs", Partition: 2, Offset: 1234}
	tests := map[string]struct {
		a, b tokenwatch.Origin
		ia   int
		ib   int
		same bool
	}{
		"same record same index": {o, o, 0, 0, true},
		"other index":            {o, o, 0, 1, false},
		"other offset":           {o, tokenwatch.Origin{Source: "auth-logs", Partition: 2, Offset: 1235}, 0, 0, false},
		"other partition":        {o, tokenwatch.Origin{Source: "auth-logs", Partition: 3, Offset: 1234}, 0, 0, false},
		"other topic":            {o, tokenwatch.Origin{Source: "auth-logs2", Partition: 2, Offset: 1234}, 0, 0, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := RowID(tc.a, tc.ia) == RowID(tc.b, tc.ib); got != tc.same {
				t.Fatalf("RowID equal = %v, want %v", got, tc.same)
			}
		})
	}
}

func TestAddBatchColumns(t *testing.T) {
	r := NewRows()
	b := testBatch(3, 1)
	b.Uses[0].Geo = tokenwatch.Geo{ASN: 3320, Country: "DE", Lat: 50.1, Lon: 8.6, HasLocation: true}
	b.Uses[1].IP = netip.Addr{}
	b.Uses[2].JWT = nil
	b.Uses[2].Time = time.Time{}
	if err := r.AddBatch(b); err != nil {
		t.Fatal(err)
	}
	for _, tb := range r.tables() {
		tb.check()
	}
	e := r.events
	if e.rows() != 3 || r.findings.rows() != 1 || r.alerts.rows() != 1 || r.revocations.rows() != 1 {
		t.Fatalf("rows: events %d findings %d alerts %d revocations %d", e.rows(), r.findings.rows(), r.alerts.rows(), r.revocations.rows())
	}
	if e.fingerprint.v[0] != b.Uses[0].Fingerprint.String() || len(e.fingerprint.v[0]) != 32 {
		t.Errorf("fingerprint column %q", e.fingerprint.v[0])
	}
	if e.ip.v[0] != "81.2.69.142" || e.ip.v[1] != "::" {
		t.Errorf("ip column %q", e.ip.v)
	}
	if e.lat.v[0] != 50.1 || e.hasLocation.v[0] != 1 || e.hasLocation.v[1] != 0 {
		t.Errorf("location columns %v %v", e.lat.v, e.hasLocation.v)
	}
	if e.lifetime.v[0] != 3600 || e.aud.v[0][0] != "api" || len(e.aud.v[2]) != 0 || e.aud.v[2] == nil {
		t.Errorf("jwt columns lifetime %v aud %v", e.lifetime.v, e.aud.v)
	}
	if !e.eventTime.v[2].Equal(time.Unix(0, 0)) {
		t.Errorf("zero event time stored as %v, want the epoch", e.eventTime.v[2])
	}
	if e.leak.v[0] != 1 || e.leak.v[1] != 0 {
		t.Errorf("leak column %v", e.leak.v)
	}
	if e.rowID.v[0] != RowID(b.Uses[0].Origin, 0) {
		t.Error("row_id is not RowID(origin, index)")
	}
	r.Reset()
	if r.Len() != 0 {
		t.Fatalf("Len after Reset = %d", r.Len())
	}
}

func TestAlertVersionOrders(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a := tokenwatch.Alert{DetectedAt: t0}
	b := tokenwatch.Alert{DetectedAt: t0.Add(-time.Hour), Update: 1} // a re-raise, even with an earlier clock
	if AlertVersion(&b) <= AlertVersion(&a) {
		t.Fatal("a re-raise (update 1) must supersede the first alert")
	}
	c := tokenwatch.Alert{DetectedAt: t0.Add(time.Second)}
	if AlertVersion(&c) <= AlertVersion(&a) {
		t.Fatal("a later detection must supersede an earlier one")
	}
}

func TestInsertSQLExplicitColumns(t *testing.T) {
	r := NewRows()
	for _, tb := range r.tables() {
		s := tb.insertSQL("tw")
		if !strings.HasPrefix(s, "INSERT INTO tw."+tb.name+" (`") || strings.Contains(s, "inserted_at") {
			t.Errorf("insert SQL %q", s)
		}
		if strings.Count(s, "`")/2 != len(tb.cols) {
			t.Errorf("%s: %d columns in SQL, %d in table", tb.name, strings.Count(s, "`")/2, len(tb.cols))
		}
	}
}

func TestInsertStatementsJSON(t *testing.T) {
	r := NewRows()
	if err := r.AddBatch(testBatch(2, 1)); err != nil {
		t.Fatal(err)
	}
	stmts, err := r.InsertStatements("tw")
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 4 { // events, findings, alerts, revocations
		t.Fatalf("%d statements, want 4", len(stmts))
	}
	if !strings.Contains(stmts[0], `"event_time":"2023-11-14 22:13:20.000"`) || !strings.Contains(stmts[0], `"aud":["api"]`) {
		t.Errorf("token_events JSON:\n%s", stmts[0])
	}
}

// BenchmarkRowsAddBatch measures building ClickHouse rows from token uses,
// the writer's in-process cost per row (SetBytes: the uses' string payload).
func BenchmarkRowsAddBatch(b *testing.B) {
	batch := testBatch(1000, 100)
	for i := range batch.Uses {
		u := &batch.Uses[i]
		u.UserAgent, u.Path, u.Method, u.Status = "Mozilla/5.0 (X11; Linux x86_64)", "/api/v1/orders/123", "GET", 200
		u.Geo = tokenwatch.Geo{ASN: 3320, ASOrg: "Deutsche Telekom AG", Country: "DE", City: "Berlin", Lat: 52.5, Lon: 13.4, HasLocation: true}
	}
	var payload int
	for i := range batch.Uses {
		u := &batch.Uses[i]
		payload += 32 + len(u.Kind) + len(u.Rule) + len(u.Redacted) + len(u.UserAgent) + len(u.Path) + len(u.Service) + len(u.Geo.ASOrg) + len(u.Geo.City) + len(u.Origin.Source) + 64
	}
	r := NewRows()
	b.SetBytes(int64(payload))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Reset()
		if err := r.AddBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch.Uses))/b.Elapsed().Seconds(), "rows/s")
}
