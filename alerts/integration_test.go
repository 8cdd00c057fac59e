//go:build integration

package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// kafkaConfig returns a config whose outbox and DLQ are fresh Kafka topics.
func kafkaConfig(t testing.TB, dir string, sinks ...SinkConfig) Config {
	c := fastConfig(dir, sinks...)
	c.Outbox.File, c.DeadLetter.File = "", ""
	c.Outbox.Brokers = testenv.KafkaBrokers(t)
	c.Outbox.Topic = testenv.CreateTopic(t, "alerts-outbox", 3)
	c.DeadLetter.Topic = testenv.CreateTopic(t, "alerts-dlq", 1)
	c.Dispatcher.Group = "dispatcher-" + filepath.Base(c.Outbox.Topic)
	c.Dispatcher.CommitInterval = 20 * time.Millisecond
	c.Dispatcher.SessionTimeout = 6 * time.Second // the broker's group.min.session.timeout.ms
	return c
}

func kafkaEnqueue(t testing.TB, c Config, alerts []tokenwatch.Alert) {
	t.Helper()
	q := NewKafkaQueue(c.Outbox.Brokers, c.Outbox.Topic, 10*time.Second)
	ob := NewOutbox(c, q)
	for i := 0; i < len(alerts); i += 10 {
		b := &tokenwatch.Batch{Alerts: alerts[i:min(i+10, len(alerts))]}
		if err := ob.Process(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := ob.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func runKafkaDispatcher(t testing.TB, ctx context.Context, c Config) error {
	dlq := NewKafkaQueue(c.Outbox.Brokers, c.DeadLetter.Topic, 10*time.Second)
	defer dlq.Close()
	d, err := NewDispatcher(c, dlq, nil, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	src := NewKafkaSource(c.Outbox.Brokers, c.Outbox.Topic, c.Dispatcher.Group, c.Dispatcher.SessionTimeout)
	defer src.Close()
	return d.Run(ctx, src)
}

// TestKafkaOutboxThroughOutagesAndCancel: alerts in a real Kafka outbox; the
// receiver fails with 500, 429 + Retry-After and hangs for a while; the
// dispatcher is cancelled abruptly twice mid-delivery and restarted. Every alert
// is delivered, duplicates share the webhook-id.
func TestKafkaOutboxThroughOutagesAndCancel(t *testing.T) {
	const n = 60
	var mu sync.Mutex
	var first time.Time // the outage phases count from the first request
	rc := newReceiver(t, func(i int, r *http.Request, body []byte) (int, map[string]string, time.Duration) {
		mu.Lock()
		if first.IsZero() {
			first = time.Now()
		}
		el := time.Since(first)
		mu.Unlock()
		switch {
		case el < time.Second:
			return 500, nil, 0
		case el < 2*time.Second:
			return 429, map[string]string{"Retry-After": "1"}, 0
		case el < 3*time.Second:
			return 200, nil, time.Second // past the 300 ms sink timeout
		}
		return 200, nil, 30 * time.Millisecond
	})
	dir := t.TempDir()
	c := kafkaConfig(t, dir, webhookSinkConfig("soar", rc.URL))
	c.Sinks[0].Timeout = 300 * time.Millisecond // the receiver hangs for 1 s in one phase
	c.CircuitBreaker.Failures = 100
	c.Dispatcher.Concurrency = 8
	var alerts []tokenwatch.Alert
	for i := range n {
		alerts = append(alerts, testAlert(i, tokenwatch.AlertLeakedTokenReplay))
	}
	kafkaEnqueue(t, c, alerts)
	// Two dispatchers are cancelled abruptly: one during the outage, one while
	// deliveries succeed.
	for _, until := range []func() bool{
		func() bool { return len(rc.requests()) >= 20 },
		func() bool { return len(rc.ok()) >= 15 },
	} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- runKafkaDispatcher(t, ctx, c) }()
		waitFor(t, 60*time.Second, "progress before the cancel", until)
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runKafkaDispatcher(t, ctx, c) }()
	waitFor(t, 60*time.Second, "all alerts delivered", func() bool { return len(uniqueDelivered(t, rc)) == n })
	cancel()
	<-done
	checkDeliveries(t, rc, n)
	statuses := map[int]int{}
	for _, r := range rc.requests() {
		statuses[r.Status]++
	}
	if statuses[500] == 0 || statuses[429] == 0 {
		t.Fatalf("the outage phases were not exercised: %v", statuses)
	}
	t.Logf("%d requests for %d alerts, by status %v, %d duplicate 2xx deliveries", len(rc.requests()), n, statuses, len(rc.ok())-n)
}

// TestKafkaDispatcherKill9 runs the dispatcher as a subprocess, kills it with
// SIGKILL while deliveries are in flight, and restarts it: every alert arrives,
// and repeated deliveries carry the same webhook-id.
func TestKafkaDispatcherKill9(t *testing.T) {
	const n = 80
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, map[string]string, time.Duration) {
		return 200, nil, 40 * time.Millisecond
	})
	dir := t.TempDir()
	c := kafkaConfig(t, dir, webhookSinkConfig("soar", rc.URL))
	c.Dispatcher.Concurrency = 4
	c.Dispatcher.CommitInterval = 100 * time.Millisecond
	var alerts []tokenwatch.Alert
	for i := range n {
		alerts = append(alerts, testAlert(i, tokenwatch.AlertConcurrentReplay))
	}
	kafkaEnqueue(t, c, alerts)
	cfgJSON, _ := json.Marshal(c)
	cfgPath := filepath.Join(dir, "config.json")
	os.WriteFile(cfgPath, cfgJSON, 0o600)
	spawn := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKafkaDispatcherSubprocess$", "-test.v")
		cmd.Env = append(os.Environ(), "TW_ALERTS_DISPATCHER_CONFIG="+cfgPath)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	for _, after := range []int{15, 40} {
		cmd := spawn()
		waitFor(t, 60*time.Second, fmt.Sprintf("%d requests", after), func() bool { return len(rc.requests()) >= after })
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	cmd := spawn()
	defer func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() }()
	waitFor(t, 60*time.Second, "all alerts delivered", func() bool { return len(uniqueDelivered(t, rc)) == n })
	checkDeliveries(t, rc, n)
	t.Logf("%d requests for %d alerts after two kill -9", len(rc.requests()), n)
}

// TestKafkaDispatcherSubprocess is the child of TestKafkaDispatcherKill9.
func TestKafkaDispatcherSubprocess(t *testing.T) {
	p := os.Getenv("TW_ALERTS_DISPATCHER_CONFIG")
	if p == "" {
		t.Skip("only run as the child of TestKafkaDispatcherKill9")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if err := runKafkaDispatcher(t, context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// TestKafkaReplayDeadLetters: dead letters in a Kafka DLQ topic are replayed
// once; a second replay finds nothing.
func TestKafkaReplayDeadLetters(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, map[string]string, time.Duration) { return 400, nil, 0 })
	dir := t.TempDir()
	c := kafkaConfig(t, dir, webhookSinkConfig("soar", rc.URL))
	var alerts []tokenwatch.Alert
	for i := range 5 {
		alerts = append(alerts, testAlert(i, tokenwatch.AlertTokenLeak))
	}
	kafkaEnqueue(t, c, alerts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runKafkaDispatcher(t, ctx, c) }()
	waitFor(t, 30*time.Second, "5 refusals", func() bool { return len(rc.requests()) == 5 })
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-done
	rc.setRespond(nil)
	replay := func() int {
		dlq := NewKafkaQueue(c.Outbox.Brokers, c.DeadLetter.Topic, 10*time.Second)
		defer dlq.Close()
		d, _ := NewDispatcher(c, dlq, nil, WithLogger(slog.New(slog.DiscardHandler)))
		src, err := NewBoundedKafkaSource(t.Context(), c.Outbox.Brokers, c.DeadLetter.Topic, c.Dispatcher.Group+"-replay")
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		n, err := d.Replay(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := replay(); n != 5 {
		t.Fatalf("replayed %d, want 5", n)
	}
	if got := len(rc.ok()); got != 5 {
		t.Fatalf("%d delivered by the replay, want 5", got)
	}
	if n := replay(); n != 0 {
		t.Fatalf("second replay handled %d dead letters, want 0", n)
	}
}

// BenchmarkKafkaOutboxToWebhookLatency measures, at a sustained rate, the time
// from Outbox.Process (the pipeline handing a batch's alert to the outbox:
// policy, envelope, synchronous acks=all write to Kafka) to the webhook request
// arriving at a receiver (dispatcher consumer group fetch, template, Standard
// Webhooks signature, HTTP POST). Run with -benchtime=Nx; the rate (alerts/s)
// comes from TW_BENCH_RATE (default 200).
func BenchmarkKafkaOutboxToWebhookLatency(b *testing.B) {
	rate := 200
	if v, err := strconv.Atoi(os.Getenv("TW_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	rc := newReceiver(b, nil)
	rc.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a tokenwatch.Alert
		json.NewDecoder(r.Body).Decode(&a)
		now := time.Now()
		mu.Lock()
		if t0, ok := sent[a.ID]; ok {
			lat = append(lat, now.Sub(t0))
			delete(sent, a.ID)
		}
		mu.Unlock()
		w.WriteHeader(200)
	})
	dir := b.TempDir()
	c := kafkaConfig(b, dir, webhookSinkConfig("soar", rc.URL))
	c.Policy.DedupeWindow = 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runKafkaDispatcher(b, ctx, c) }()
	q := NewKafkaQueue(c.Outbox.Brokers, c.Outbox.Topic, 10*time.Second)
	ob := NewOutbox(c, q)
	// Warm up: the consumer group joins and the connections open.
	warm := testAlert(1_000_000, tokenwatch.AlertLeakedTokenReplay)
	mu.Lock()
	sent[warm.ID] = time.Now()
	mu.Unlock()
	ob.Process(ctx, &tokenwatch.Batch{Alerts: []tokenwatch.Alert{warm}})
	waitFor(b, 60*time.Second, "warm-up delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) == 1 })
	mu.Lock()
	lat = lat[:0]
	mu.Unlock()

	// The pipeline hands the outbox one batch every 10 ms holding the alerts
	// raised in it (rate/100 per batch, at least 1).
	per := max(rate/100, 1)
	interval := time.Second * time.Duration(per) / time.Duration(rate)
	b.ResetTimer()
	begin := time.Now()
	next := begin
	for i := 0; i < b.N; {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		batch := &tokenwatch.Batch{}
		now := time.Now()
		mu.Lock()
		for j := 0; j < per && i < b.N; j++ {
			a := testAlert(i, tokenwatch.AlertLeakedTokenReplay)
			sent[a.ID] = now
			batch.Alerts = append(batch.Alerts, a)
			i++
		}
		mu.Unlock()
		if err := ob.Process(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	achieved := float64(b.N) / time.Since(begin).Seconds()
	waitFor(b, 60*time.Second, "all deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) == b.N })
	b.StopTimer()
	cancel()
	<-done
	ob.Close(context.Background())
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(achieved, "alerts/s")
	b.Logf("n=%d target=%d/s achieved=%.0f/s batch=%d p50=%.1fms p99=%.1fms max=%.1fms", len(lat), rate, achieved, per, pct(0.5), pct(0.99), pct(1))
}
