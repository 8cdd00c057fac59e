//go:build integration

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
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

	// An asynchronous producer (acks=all, 1 ms linger), so the benchmark's own
	// produce round trips do not limit the rate; latency counts from the moment
	// the line is handed to the Kafka client.
	var produceErr error
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: logs, Balancer: &kafka.RoundRobin{}, BatchTimeout: time.Millisecond,
		RequiredAcks: kafka.RequireAll, Async: true, Completion: func(_ []kafka.Message, err error) {
			if err != nil {
				mu.Lock()
				produceErr = err
				mu.Unlock()
			}
		}}
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
		mu.Lock()
		perr := produceErr
		mu.Unlock()
		if perr != nil {
			b.Fatalf("produce: %v", perr)
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

// TestRunDeliversToEverySink: application log lines with leaked JWTs are
// produced to Kafka; `tokenwatch run` (subprocess) raises token_leak alerts and
// delivers each to a signed webhook, the issuer's RFC 7009 revocation endpoint
// (with the very token, client_secret_basic) and a Shared Signals receiver (a
// SET that verifies with the public key). The outbox topic never holds a token
// in clear.
func TestRunDeliversToEverySink(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	logs := testenv.CreateTopic(t, "e2e-sinks-logs", 1)
	outbox := testenv.CreateTopic(t, "e2e-sinks-outbox", 1)
	dlq := testenv.CreateTopic(t, "e2e-sinks-dlq", 1)
	const n = 5
	tokens := map[string]string{} // jti -> token
	for i := range n {
		id := "sinks-" + strconv.Itoa(i)
		tokens[id] = fakeJWT(id)
	}

	type got struct {
		mu       sync.Mutex
		hooks    map[string]bool // jti
		revoked  map[string]bool // token
		sets     map[string]bool // txn
		problems []string
	}
	g := &got{hooks: map[string]bool{}, revoked: map[string]bool{}, sets: map[string]bool{}}
	problem := func(f string, a ...any) {
		g.mu.Lock()
		g.problems = append(g.problems, fmt.Sprintf(f, a...))
		g.mu.Unlock()
	}
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifyStdWebhook(secret, r.Header, body); err != nil {
			problem("webhook signature: %v", err)
		}
		var a tokenwatch.Alert
		json.Unmarshal(body, &a)
		g.mu.Lock()
		g.hooks[a.JTI] = true
		g.mu.Unlock()
	}))
	defer hook.Close()
	revoke := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if u, p, ok := r.BasicAuth(); !ok || u != "tokenwatch" || p != "client-secret" {
			problem("revocation client auth %q %q %v", u, p, ok)
		}
		g.mu.Lock()
		g.revoked[r.PostForm.Get("token")] = true
		g.mu.Unlock()
	}))
	defer revoke.Close()
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "ssf.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	ssf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		jws, err := jose.ParseSignedCompact(string(body), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			problem("SET: %v", err)
			w.WriteHeader(400)
			return
		}
		payload, err := jws.Verify(&ecKey.PublicKey)
		if err != nil {
			problem("SET signature: %v", err)
		}
		var c struct {
			Txn   string         `json:"txn"`
			SubID map[string]any `json:"sub_id"`
		}
		json.Unmarshal(payload, &c)
		if c.SubID["format"] != "iss_sub" || c.SubID["iss"] != "https://idp.example.com" {
			problem("SET subject %v", c.SubID)
		}
		g.mu.Lock()
		g.sets[c.Txn] = true
		g.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer ssf.Close()

	bin := buildBinaryTB(t)
	cfgPath := filepath.Join(dir, "tw.yaml")
	cfg := fmt.Sprintf(`ingest:
  kafka:
    brokers: [%q]
    group_id: e2e-%s
    topics: [{name: %s, kind: app}]
    flush_interval: 5ms
    session_timeout: 6s
    heartbeat_interval: 500ms
alerts:
  sealing_key: BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=
  sinks:
    - {name: soar, type: webhook, url: %q, secrets: [%q]}
    - {name: idp, type: rfc7009, url: %q, issuer: "https://idp.example.com", client_id: tokenwatch, client_secret: client-secret, token_type_hint: access_token}
    - {name: ssf, type: ssf, url: %q, set_issuer: "https://tokenwatch.test", audience: ["https://rp.test"], key_file: %s, kid: k1}
  default_sinks: [soar, idp, ssf]
  outbox: {brokers: [%q], topic: %s}
  dead_letter: {topic: %s}
  dispatcher: {group: e2e-dispatch-%s, state_file: %s, session_timeout: 6s}
telemetry:
  listen: ""
detect:
  fingerprint_key: %s
`, brokers[0], logs, logs, hook.URL, secret, revoke.URL, ssf.URL, keyFile, brokers[0], outbox, dlq, outbox, filepath.Join(dir, "state.json"), testKey)
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	var logBuf syncWriter
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: logs, BatchTimeout: time.Millisecond}
	defer w.Close()
	for id, tok := range tokens {
		line := `{"level":"debug","service":"orders","msg":"upstream call","headers":{"authorization":"Bearer ` + tok + `"},"req":"` + id + `"}`
		if err := w.WriteMessages(context.Background(), kafka.Message{Value: []byte(line)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		g.mu.Lock()
		done := len(g.hooks) >= n && len(g.revoked) >= n && len(g.sets) >= n
		g.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %d webhooks, %d revocations, %d SETs of %d; run log:\n%s", len(g.hooks), len(g.revoked), len(g.sets), n, logBuf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.problems {
		t.Error(p)
	}
	for id, tok := range tokens {
		if !g.hooks[id] || !g.revoked[tok] {
			t.Errorf("token %s: webhook %v, revoked %v", id, g.hooks[id], g.revoked[tok])
		}
	}
	// The outbox topic holds the alerts, and the tokens only sealed.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: outbox, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sealed := 0
	for range n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read outbox: %v", err)
		}
		for _, tok := range tokens {
			if bytes.Contains(m.Value, []byte(tok)) || bytes.Contains(m.Value, []byte(strings.Split(tok, ".")[1])) {
				t.Fatal("the outbox holds a token in clear")
			}
		}
		if bytes.Contains(m.Value, []byte(`"sealed":"`)) {
			sealed++
		}
	}
	if sealed != n {
		t.Fatalf("%d of %d outbox messages carry the sealed token", sealed, n)
	}
	if bytes.Contains([]byte(logBuf.String()), []byte(strings.Split(tokens["sinks-0"], ".")[1])) {
		t.Fatal("the run log holds a token")
	}
}

// verifyStdWebhook is an independent Standard Webhooks check.
func verifyStdWebhook(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no matching signature for webhook-id %q", h.Get("webhook-id"))
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
func (w *syncWriter) String() string { w.mu.Lock(); defer w.mu.Unlock(); return w.b.String() }
