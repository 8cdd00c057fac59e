package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// failingQueue fails the first `fail` Puts, then records.
type failingQueue struct {
	fail int
	got  [][]byte
}

func (q *failingQueue) Put(_ context.Context, msgs []QueueMessage) error {
	if q.fail > 0 {
		q.fail--
		return errors.New("broker unavailable")
	}
	for _, m := range msgs {
		q.got = append(q.got, m.Value)
	}
	return nil
}

func (q *failingQueue) Close() error { return nil }

// TestOutboxKeepsUnsentAcrossFailedBatch: when the write fails the stage
// returns the error; the retried batch is suppressed by the policy (same type
// and fingerprint), yet the first alert still reaches the queue because the
// outbox kept it.
func TestOutboxKeepsUnsentAcrossFailedBatch(t *testing.T) {
	c := DefaultConfig()
	q := &failingQueue{fail: 1}
	ob := NewOutbox(c, q)
	b := &tokenwatch.Batch{Alerts: []tokenwatch.Alert{testAlert(1, tokenwatch.AlertTokenLeak)}}
	if err := ob.Process(context.Background(), b); err == nil {
		t.Fatal("Process hid the queue failure")
	}
	if err := ob.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(q.got) != 1 {
		t.Fatalf("%d messages written, want 1", len(q.got))
	}
	var env Envelope
	if err := json.Unmarshal(q.got[0], &env); err != nil || env.Alert.ID != "al-0001" || env.EnqueuedAt.IsZero() {
		t.Fatalf("envelope %s: %v", q.got[0], err)
	}
}

// TestOutboxSealedOnlyForRevocationRoutes: the sealed token goes into the
// envelope only when the alert is routed to an rfc7009 sink; the token expiry
// comes from the batch's use of that token.
func TestOutboxSealedOnlyForRevocationRoutes(t *testing.T) {
	s := testSealer(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	c := DefaultConfig()
	c.Sinks = []SinkConfig{
		{Name: "idp", Type: SinkRFC7009, URL: "https://idp.example/revoke", Issuer: "https://idp.example", ClientID: "c"},
		{Name: "hook", Type: SinkWebhook, URL: "https://soar.example/hook"},
	}
	c.Routes = []RouteConfig{{Types: []string{tokenwatch.AlertLeakedTokenReplay}, Sinks: []string{"idp", "hook"}}}
	c.DefaultSinks = []string{"hook"}
	q := &failingQueue{}
	ob := NewOutbox(c, q)
	b := revokeBatch(t, s, 1, exp)
	leak := testAlert(2, tokenwatch.AlertTokenLeak)
	leak.Fingerprint = b.Alerts[0].Fingerprint
	b.Alerts = append(b.Alerts, leak)
	if err := ob.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	// The stage must not retain the batch: scribble over it.
	for i := range b.Uses {
		clear(b.Uses[i].Sealed)
	}
	b.Reset()
	if len(q.got) != 2 {
		t.Fatalf("%d messages, want 2", len(q.got))
	}
	var replay, leakEnv Envelope
	json.Unmarshal(q.got[0], &replay)
	json.Unmarshal(q.got[1], &leakEnv)
	if len(replay.Sealed) == 0 || replay.TokenExp == nil || !replay.TokenExp.Equal(exp) {
		t.Fatalf("replay envelope: sealed %d bytes, exp %v", len(replay.Sealed), replay.TokenExp)
	}
	fp, _ := tokenwatch.ParseFingerprint(replay.Alert.Fingerprint)
	if tok, err := s.Open(replay.Sealed, fp); err != nil || string(tok) != plantedToken {
		t.Fatalf("sealed value does not open to the token: %v", err)
	}
	if len(leakEnv.Sealed) != 0 {
		t.Fatal("an alert routed to no rfc7009 sink carries the sealed token")
	}
}

// TestOutboxStormOnDisk: the outbox stage turns a storm of batches into one
// alert plus updates on disk.
func TestOutboxStormOnDisk(t *testing.T) {
	c := DefaultConfig()
	c.Policy.UpdateInterval = time.Minute
	q := &failingQueue{}
	now := time.Unix(1_800_000_000, 0)
	ob := NewOutbox(c, q, WithClock(func() time.Time { return now }))
	alerts := storm(1000)
	for i := 0; i < len(alerts); i += 50 {
		b := &tokenwatch.Batch{Alerts: alerts[i : i+50]}
		if err := ob.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Second)
	}
	if err := ob.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 20 batches, 10 s apart = 190 s: first + updates at >= 60 s intervals + flush.
	if len(q.got) < 3 || len(q.got) > 5 {
		t.Fatalf("%d messages for a storm of 1000 alerts", len(q.got))
	}
	for i, v := range q.got {
		var env Envelope
		json.Unmarshal(v, &env)
		if env.Alert.ID != "storm-al-0000" || env.Alert.Update != i {
			t.Fatalf("message %d = %s/%d", i, env.Alert.ID, env.Alert.Update)
		}
	}
}

func BenchmarkOutboxProcess(b *testing.B) {
	c := DefaultConfig()
	c.Policy.DedupeWindow = 0
	q := &failingQueue{}
	ob := NewOutbox(c, q)
	batch := &tokenwatch.Batch{}
	for i := range 10 {
		batch.Alerts = append(batch.Alerts, testAlert(i, tokenwatch.AlertLeakedTokenReplay))
	}
	b.ReportAllocs()
	for b.Loop() {
		q.got = q.got[:0]
		if err := ob.Process(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleSigner() {
	s, _ := NewSigner([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	fmt.Println(s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`)))
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

func ExampleWebhookID() {
	// The same alert update to the same sink always has the same delivery id,
	// so a receiver can drop retried duplicates.
	first, retry, update := WebhookID("al-1", 0, "soar"), WebhookID("al-1", 0, "soar"), WebhookID("al-1", 1, "soar")
	fmt.Println(first == retry)
	fmt.Println(first == update)
	// Output:
	// true
	// false
}

// TestOutboxTickEmitsDueUpdates: a pending update goes out on Tick once its
// interval passed, without another batch.
func TestOutboxTickEmitsDueUpdates(t *testing.T) {
	c := DefaultConfig()
	c.Policy.UpdateInterval = time.Minute
	q := &failingQueue{}
	now := time.Unix(1_800_000_000, 0)
	ob := NewOutbox(c, q, WithClock(func() time.Time { return now }))
	a := testAlert(1, tokenwatch.AlertConcurrentReplay)
	for range 3 {
		if err := ob.Process(context.Background(), &tokenwatch.Batch{Alerts: []tokenwatch.Alert{a}}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	if len(q.got) != 1 {
		t.Fatalf("%d messages before the interval, want 1", len(q.got))
	}
	ob.Tick(context.Background())
	if len(q.got) != 1 {
		t.Fatal("update emitted before its interval")
	}
	now = now.Add(time.Minute)
	if err := ob.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(q.got) != 2 {
		t.Fatalf("%d messages after Tick, want 2", len(q.got))
	}
	var env Envelope
	json.Unmarshal(q.got[1], &env)
	if env.Alert.ID != a.ID || env.Alert.Update != 1 {
		t.Fatalf("tick emitted %s/%d", env.Alert.ID, env.Alert.Update)
	}
}

// TestFileSourceWaitsForWholeLines: a line still being appended is not
// returned until its newline arrives.
func TestFileSourceWaitsForWholeLines(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "q.jsonl")
	os.WriteFile(p, []byte(`{"a":1}`+"\n"+`{"b":`), 0o600)
	src, err := NewFileSource(p, p+".cursor", false)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	it, err := src.Fetch(context.Background())
	if err != nil || string(it.Value) != `{"a":1}` {
		t.Fatalf("first = %q, %v", it.Value, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if it, err := src.Fetch(ctx); err == nil {
		t.Fatalf("returned the partial line %q", it.Value)
	}
	cancel()
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("2}\n")
	f.Close()
	it2, err := src.Fetch(context.Background())
	if err != nil || string(it2.Value) != `{"b":2}` {
		t.Fatalf("second = %q, %v", it2.Value, err)
	}
	if err := src.Commit(context.Background(), it2); err != nil {
		t.Fatal(err)
	}
	again, _ := NewFileSource(p, p+".cursor", true)
	defer again.Close()
	if it, err := again.Fetch(context.Background()); err != io.EOF {
		t.Fatalf("after commit a reopened bounded source returned %v, %v; want io.EOF", it, err)
	}
}
