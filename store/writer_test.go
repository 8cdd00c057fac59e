package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/alerts"
)

// fakeServer records inserted rows per table and fails on demand.
type fakeServer struct {
	mu     sync.Mutex
	rows   map[string]int
	calls  int
	failN  int           // fail the next failN calls
	block  chan struct{} // when non-nil, send waits for it
	sent   chan struct{} // signalled on every call
	chunks []int
}

func newFake() *fakeServer {
	return &fakeServer{rows: map[string]int{}, sent: make(chan struct{}, 1000)}
}

func (f *fakeServer) send(ctx context.Context, t *table, i, j int) error {
	f.sent <- struct{}{}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failN > 0 {
		f.failN--
		return errors.New("dial tcp 127.0.0.1:9000: connect: connection refused")
	}
	for _, c := range t.cols {
		if got := lenOf(c.values(i, j)); got != j-i {
			panic(fmt.Sprintf("column %s: %d values for %d rows", c.name(), got, j-i))
		}
	}
	f.rows[t.name] += j - i
	f.chunks = append(f.chunks, j-i)
	return nil
}

func lenOf(v any) int {
	switch s := v.(type) {
	case []string:
		return len(s)
	case []uint64:
		return len(s)
	case []time.Time:
		return len(s)
	case []uint8:
		return len(s)
	case []uint16:
		return len(s)
	case []uint32:
		return len(s)
	case []int32:
		return len(s)
	case []int64:
		return len(s)
	case []float64:
		return len(s)
	case [][]string:
		return len(s)
	}
	panic(fmt.Sprintf("lenOf %T", v))
}

func (f *fakeServer) got(table string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rows[table]
}

func testConfig() Config {
	c := DefaultConfig()
	c.BatchRows = 100
	c.MaxPendingRows = 1000
	c.RetryInitial = time.Millisecond
	c.RetryMax = 4 * time.Millisecond
	c.FlushInterval = 10 * time.Millisecond
	return c
}

func testBatch(n int, leaks int) *tokenwatch.Batch {
	b := &tokenwatch.Batch{}
	for i := range n {
		b.Uses = append(b.Uses, tokenwatch.TokenUse{
			Fingerprint: tokenwatch.Fingerprint{byte(i), 1}, Kind: "jwt", Rule: "jwt.compact", Redacted: "eyJhbG…abcd",
			Leak: i < leaks, Time: time.Unix(1_700_000_000+int64(i), 0), IP: netip.MustParseAddr("81.2.69.142"),
			Service: "checkout", Origin: tokenwatch.Origin{Source: "app", Partition: 0, Offset: int64(i)},
			JWT: &tokenwatch.JWTInfo{Alg: "RS256", Iss: "https://idp", Aud: []string{"api"}, Exp: 1_700_003_600, Iat: 1_700_000_000},
		})
	}
	b.Alerts = append(b.Alerts, tokenwatch.Alert{ID: "a1", Type: tokenwatch.AlertTokenLeak, Severity: tokenwatch.SeverityMedium,
		EventTime: time.Unix(1_700_000_000, 0), DetectedAt: time.Unix(1_700_000_001, 0), Summary: "leak"})
	b.Revocations = append(b.Revocations, tokenwatch.Revocation{JTI: "j1", Time: time.Unix(1_700_000_100, 0),
		Origin: tokenwatch.Origin{Source: "rev", Partition: 0, Offset: 1}})
	return b
}

func TestProcessWritesEveryTableInChunks(t *testing.T) {
	f := newFake()
	w := newWriter(testConfig(), f.send, nil)
	defer w.Close(context.Background())
	if err := w.Process(context.Background(), testBatch(250, 30)); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]int{"token_events": 250, "findings": 30, "alerts": 1, "revocations": 1, "deliveries": 0} {
		if got := f.got(table); got != want {
			t.Errorf("%s: %d rows, want %d", table, got, want)
		}
	}
	// 250 token_events rows in chunks of at most batch_rows (100).
	for _, c := range f.chunks {
		if c > 100 {
			t.Errorf("chunk of %d rows exceeds batch_rows 100", c)
		}
	}
	if w.Pending() != 0 {
		t.Errorf("pending = %d after Process, want 0", w.Pending())
	}
}

func TestProcessRetriesUntilStored(t *testing.T) {
	f := newFake()
	f.failN = 5
	w := newWriter(testConfig(), f.send, nil)
	defer w.Close(context.Background())
	if err := w.Process(context.Background(), testBatch(10, 0)); err != nil {
		t.Fatalf("Process after transient failures: %v", err)
	}
	if got := f.got("token_events"); got != 10 {
		t.Fatalf("token_events rows = %d, want 10", got)
	}
	if f.calls < 6 {
		t.Errorf("send called %d times, want at least 6 (5 failures + success)", f.calls)
	}
}

func TestProcessReturnsOnlyAfterStored(t *testing.T) {
	f := newFake()
	f.failN = 1 << 30 // server down for good
	w := newWriter(testConfig(), f.send, nil)
	defer w.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Process(ctx, testBatch(10, 0)) }()
	// Several attempts fail; Process must still be waiting.
	for range 3 {
		<-f.sent
	}
	select {
	case err := <-done:
		t.Fatalf("Process returned %v while the server was down", err)
	default:
	}
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Process = %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q should carry the last insert error", err)
	}
	if w.Pending() != 0 {
		t.Errorf("pending = %d after a failed Process, want 0", w.Pending())
	}
}

func TestBackpressureBlocksWhenFull(t *testing.T) {
	f := newFake()
	f.block = make(chan struct{})
	cfg := testConfig()
	cfg.MaxPendingRows = 100
	w := newWriter(cfg, f.send, nil)
	defer w.Close(context.Background())
	first := make(chan error, 1)
	go func() { first <- w.Process(context.Background(), testBatch(60, 0)) }()
	<-f.sent // the first batch is inside send, 62 rows pending
	second := make(chan error, 1)
	var admitted atomic.Bool
	go func() {
		err := w.Process(context.Background(), testBatch(60, 0))
		admitted.Store(true)
		second <- err
	}()
	// The second batch cannot be admitted while the first holds 62 of 100 rows.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if admitted.Load() || w.Pending() > 62 {
			t.Fatalf("second batch admitted while over max_pending_rows (pending %d)", w.Pending())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(f.block)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if got := f.got("token_events"); got != 120 {
		t.Errorf("token_events rows = %d, want 120", got)
	}
}

func TestBackpressureRespectsContext(t *testing.T) {
	f := newFake()
	f.block = make(chan struct{})
	defer close(f.block)
	cfg := testConfig()
	cfg.MaxPendingRows = 100
	w := newWriter(cfg, f.send, nil)
	go func() { _ = w.Process(context.Background(), testBatch(90, 0)) }()
	<-f.sent
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := w.Process(ctx, testBatch(50, 0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Process while full = %v, want deadline exceeded", err)
	}
}

func TestDeliveriesFlushByTimeAndSize(t *testing.T) {
	f := newFake()
	cfg := testConfig()
	cfg.FlushInterval = time.Hour // only size or Flush can trigger
	w := newWriter(cfg, f.send, nil)
	defer w.Close(context.Background())
	ctx := context.Background()
	d := Delivery{AlertID: "a", Sink: "soar", SinkKind: "webhook", Attempt: 1, StatusCode: 200, Outcome: "delivered", Time: time.Now()}
	if err := w.AddDeliveries(ctx, d, d); err != nil {
		t.Fatal(err)
	}
	if f.got("deliveries") != 0 {
		t.Fatal("2 deliveries flushed before batch_rows or the interval")
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.got("deliveries"); got != 2 {
		t.Fatalf("after Flush: %d deliveries, want 2", got)
	}
	// batch_rows (100) buffered rows trigger a flush without Flush.
	many := make([]Delivery, 100)
	for i := range many {
		many[i] = d
		many[i].Attempt = i + 1
	}
	if err := w.AddDeliveries(ctx, many...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return f.got("deliveries") == 102 })

	// And a short interval flushes a few rows by itself.
	f2 := newFake()
	w2 := newWriter(testConfig(), f2.send, nil)
	defer w2.Close(ctx)
	if err := w2.AddDeliveries(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return f2.got("deliveries") == 1 })
}

func TestDeliveriesKeptAcrossFailedFlush(t *testing.T) {
	f := newFake()
	cfg := testConfig()
	cfg.FlushInterval = time.Hour
	w := newWriter(cfg, f.send, nil)
	ctx := context.Background()
	d := Delivery{AlertID: "a", Sink: "soar", Attempt: 1, Time: time.Now()}
	_ = w.AddDeliveries(ctx, d)
	f.mu.Lock()
	f.failN = 1 << 30
	f.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := w.Flush(cctx); err == nil {
		t.Fatal("Flush succeeded with the server down")
	}
	_ = w.AddDeliveries(ctx, d)
	f.mu.Lock()
	f.failN = 0
	f.mu.Unlock()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.got("deliveries"); got != 2 {
		t.Fatalf("deliveries stored = %d, want 2 (the failed flush's row kept)", got)
	}
	if w.Pending() != 0 {
		t.Errorf("pending = %d, want 0", w.Pending())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestBackoff(t *testing.T) {
	initial, maxD := 100*time.Millisecond, 2*time.Second
	for attempt := range 10 {
		want := initial << attempt
		if want > maxD {
			want = maxD
		}
		for range 50 {
			d := backoff(initial, maxD, attempt)
			if d < want/2 || d > want {
				t.Fatalf("backoff(attempt %d) = %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestRecordDelivery(t *testing.T) {
	f := newFake()
	w := newWriter(testConfig(), f.send, nil)
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 0)
	err := w.RecordDelivery(ctx, alerts.Delivery{AlertID: "a1", Sink: "soar", SinkType: "webhook", Outcome: "delivered",
		Status: 200, Attempts: 3, At: at, Latency: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d := DeliveryOf(alerts.Delivery{AlertID: "a1", SinkType: "rfc7009", Attempts: 2, Status: 503, Outcome: "dead", Error: "503", At: at})
	if d.SinkKind != "rfc7009" || d.Attempt != 2 || d.StatusCode != 503 || d.Outcome != "dead" || !d.Time.Equal(at) {
		t.Errorf("DeliveryOf = %+v", d)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.got("deliveries"); got != 1 {
		t.Fatalf("deliveries rows = %d, want 1", got)
	}
}

func TestAddDeliveriesLargerThanLimit(t *testing.T) {
	f := newFake()
	cfg := testConfig()
	cfg.MaxPendingRows = 100
	w := newWriter(cfg, f.send, nil)
	ctx := context.Background()
	many := make([]Delivery, 250)
	for i := range many {
		many[i] = Delivery{AlertID: "a", Sink: "s", Attempt: i + 1, Time: time.Now()}
	}
	if err := w.AddDeliveries(ctx, many...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.got("deliveries"); got != 250 || w.Pending() != 0 {
		t.Fatalf("deliveries = %d pending = %d, want 250 and 0", got, w.Pending())
	}
}
