//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// BenchmarkRunLogToWebhookLatency measures the whole path at a sustained rate:
// an application log line carrying a fresh JWT is produced to Kafka; `tokenwatch
// run` (a subprocess: Kafka consumer group, scanner, parser, anomaly engine,
// alerts outbox on Kafka with acks=all, in-process dispatcher) raises a
// token_leak alert and POSTs it, signed, to a webhook receiver on 127.0.0.1.
// Latency is produce call -> webhook request received. One iteration is one
// log line; run with -benchtime=Nx. TW_BENCH_RATE sets lines/s (default 100).
func BenchmarkRunLogToWebhookLatency(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	rate := 100
	if v, err := strconv.Atoi(os.Getenv("TW_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	logs := testenv.CreateTopic(b, "e2e-applogs", 2)
	outbox := testenv.CreateTopic(b, "e2e-outbox", 2)
	dlq := testenv.CreateTopic(b, "e2e-dlq", 1)

	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a tokenwatch.Alert
		json.NewDecoder(r.Body).Decode(&a)
		now := time.Now()
		mu.Lock()
		if t0, ok := sent[a.JTI]; ok && a.Type == tokenwatch.AlertTokenLeak {
			lat = append(lat, now.Sub(t0))
			delete(sent, a.JTI)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	dir := b.TempDir()
	bin := buildBinaryTB(b)
	cfgPath := filepath.Join(dir, "tw.yaml")
	cfg := fmt.Sprintf(`ingest:
  kafka:
    brokers: [%q]
    group_id: e2e-%s
    topics: [{name: %s, kind: app}]
    batch_size: 256
    flush_interval: 5ms
    session_timeout: 6s
    heartbeat_interval: 500ms
alerts:
  sinks:
    - {name: soar, type: webhook, url: %q, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}
  default_sinks: [soar]
  outbox: {brokers: [%q], topic: %s}
  dead_letter: {topic: %s}
  dispatcher: {group: e2e-dispatch-%s, state_file: %s, session_timeout: 6s, commit_interval: 50ms}
telemetry:
  listen: ""
detect:
  fingerprint_key: %s
`, brokers[0], logs, logs, recv.URL+"/hook", brokers[0], outbox, dlq, outbox, filepath.Join(dir, "state.json"), testKey)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	logf, _ := os.Create(filepath.Join(dir, "run.log"))
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: logs, Balancer: &kafka.RoundRobin{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	ctx := context.Background()
	produce := func(id string) {
		line := `{"level":"debug","service":"orders","msg":"calling upstream","headers":{"authorization":"Bearer ` + fakeJWT(id) + `"}}`
		mu.Lock()
		sent[id] = time.Now()
		mu.Unlock()
		if err := w.WriteMessages(ctx, kafka.Message{Value: []byte(line)}); err != nil {
			b.Fatal(err)
		}
	}
	// Warm-up: consumer groups join, connections open.
	deadline := time.Now().Add(90 * time.Second)
	for i := 0; ; i++ {
		produce("warm-" + strconv.Itoa(i))
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "run.log"))
			b.Fatalf("no alert reached the webhook during warm-up; run log:\n%s", log)
		}
	}
	time.Sleep(time.Second)
	mu.Lock()
	lat = lat[:0]
	clear(sent)
	mu.Unlock()

	interval := time.Second / time.Duration(rate)
	b.ResetTimer()
	begin := time.Now()
	next := begin
	for i := 0; i < b.N; i++ {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		produce("e2e-" + strconv.Itoa(i))
	}
	achieved := float64(b.N) / time.Since(begin).Seconds()
	waitDeadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n == b.N {
			break
		}
		if time.Now().After(waitDeadline) {
			b.Fatalf("%d of %d alerts reached the webhook", n, b.N)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(achieved, "lines/s")
	b.Logf("log line -> Kafka -> tokenwatch run -> outbox -> dispatcher -> webhook: n=%d rate=%.0f/s p50=%.1fms p99=%.1fms max=%.1fms", len(lat), achieved, pct(0.5), pct(0.99), pct(1))
}

// buildBinaryTB builds tokenwatch for a benchmark.
func buildBinaryTB(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "tokenwatch")
	c := exec.Command("go", "build", "-o", bin, ".")
	c.Stderr = os.Stderr
	if err := c.Run(); err != nil {
		tb.Fatalf("go build: %v", err)
	}
	return bin
}
