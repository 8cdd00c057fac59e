package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// fpOf returns a deterministic fingerprint for n.
func fpOf(n int) string { return fmt.Sprintf("%032x", n+1) }

func testAlert(n int, typ string) tokenwatch.Alert {
	p, o := int32(0), int64(n)
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
	return tokenwatch.Alert{
		ID: fmt.Sprintf("al-%04d", n), Type: typ, Severity: tokenwatch.SeverityHigh,
		Fingerprint: fpOf(n), Kind: "jwt", Redacted: "eyJhbG…Qssw",
		Issuer: "https://idp.example", Subject: "user-" + strconv.Itoa(n), JTI: "jti-" + strconv.Itoa(n), ClientID: "web",
		Service: "api", EventTime: t0, DetectedAt: t0.Add(time.Second),
		Evidence: []tokenwatch.Evidence{{Time: t0, IP: "203.0.113.7", Country: "DE", City: "Berlin", UserAgent: "curl/8", Topic: "auth", Partition: &p, Offset: &o}},
		Summary:  fmt.Sprintf("Token of user-%d \"replayed\" <from> two places & more.", n),
	}
}

// verifyStandardWebhook is an independent implementation of the Standard
// Webhooks receiver check (it does not call Signer): the HMAC key is the base64
// after "whsec_", the signed content is "<id>.<timestamp>.<body>", the header
// holds space-separated "v1,<base64>" and one match suffices; the timestamp must
// be within 5 minutes.
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s out of tolerance", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, id+"."+ts+"."+string(body))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(sigs) {
		ver, sig, ok := strings.Cut(s, ",")
		if ok && ver == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// statusClientGone marks a request whose client left before the answer.
const statusClientGone = -1

// received is one request a test receiver got.
type received struct {
	ID     string
	Header http.Header
	Body   []byte
	Status int
	At     time.Time
}

// receiver is a test HTTP endpoint on 127.0.0.1 whose answer is chosen per
// request by respond (nil: 200).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	all     []received
	respond func(n int, r *http.Request, body []byte) (status int, hdr map[string]string, hang time.Duration)
}

func newReceiver(t testing.TB, respond func(n int, r *http.Request, body []byte) (int, map[string]string, time.Duration)) *receiver {
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.all)
		rc.mu.Unlock()
		rc.mu.Lock()
		respond := rc.respond
		rc.mu.Unlock()
		status, hdr, hang := 200, map[string]string(nil), time.Duration(0)
		if respond != nil {
			status, hdr, hang = respond(n, r, body)
		}
		rc.mu.Lock()
		idx := len(rc.all)
		rec := received{ID: r.Header.Get("webhook-id"), Header: r.Header.Clone(), Body: body, Status: status, At: time.Now()}
		if hang > 0 {
			rec.Status = 0 // not answered yet
		}
		rc.all = append(rc.all, rec)
		rc.mu.Unlock()
		if hang > 0 {
			select {
			case <-time.After(hang):
			case <-r.Context().Done():
			}
			final := status
			if r.Context().Err() != nil {
				final = statusClientGone // the client gave up (timeout): no answer arrived
			}
			rc.mu.Lock()
			rc.all[idx].Status = final
			rc.mu.Unlock()
			if final == statusClientGone {
				return
			}
		}
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		if status == 400 {
			w.Header().Set("Content-Type", "application/json")
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setRespond(f func(n int, r *http.Request, body []byte) (int, map[string]string, time.Duration)) {
	rc.mu.Lock()
	rc.respond = f
	rc.mu.Unlock()
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.all...)
}

// okBodies returns the requests answered 2xx.
func (rc *receiver) ok() []received {
	var out []received
	for _, r := range rc.requests() {
		if r.Status/100 == 2 {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fastConfig is a config with short retry timings for tests, a file outbox and
// DLQ in dir.
func fastConfig(dir string, sinks ...SinkConfig) Config {
	c := DefaultConfig()
	c.Sinks = sinks
	for _, s := range sinks {
		c.DefaultSinks = append(c.DefaultSinks, s.Name)
	}
	c.Policy.DedupeWindow = 0
	c.Outbox.File = filepath.Join(dir, "outbox.jsonl")
	c.DeadLetter.File = filepath.Join(dir, "dlq.jsonl")
	c.Dispatcher.StateFile = filepath.Join(dir, "state.json")
	c.Dispatcher.CommitInterval = 10 * time.Millisecond
	c.Retry.InitialBackoff = 5 * time.Millisecond
	c.Retry.MaxBackoff = 40 * time.Millisecond
	c.Retry.MaxAttempts = 50
	c.CircuitBreaker.Failures = 5
	c.CircuitBreaker.Cooldown = 30 * time.Millisecond
	return c
}

func webhookSinkConfig(name, url string) SinkConfig {
	// A long timeout: under a loaded test machine a short one would turn slow
	// answers into failures the tests do not expect. Tests of hanging receivers
	// set their own.
	return SinkConfig{Name: name, Type: SinkWebhook, URL: url, Secrets: []string{testSecret}, Timeout: time.Minute}
}

// enqueue writes alerts through an Outbox stage into c's file outbox.
func enqueue(t testing.TB, c Config, alerts ...tokenwatch.Alert) {
	t.Helper()
	q, err := NewFileQueue(c.Outbox.File)
	if err != nil {
		t.Fatal(err)
	}
	ob := NewOutbox(c, q)
	b := &tokenwatch.Batch{Alerts: alerts}
	if err := ob.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := ob.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// startDispatcher runs a dispatcher over c's file outbox until the returned stop
// is called; stop returns Run's error.
func startDispatcher(t testing.TB, c Config, sealer *Sealer, opts ...DispatcherOption) (stop func() error) {
	t.Helper()
	dlq, err := NewFileQueue(c.DeadLetter.File)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]DispatcherOption{WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	d, err := NewDispatcher(c, dlq, sealer, opts...)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewFileSource(c.Outbox.File, c.Dispatcher.StateFile+".cursor", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, src) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
			src.Close()
			dlq.Close()
			if errors.Is(runErr, context.Canceled) {
				runErr = nil
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

// readDeadLetters reads the DLQ file.
func readDeadLetters(t testing.TB, path string) []DeadLetter {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []DeadLetter
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var d DeadLetter
		if err := json.Unmarshal(l, &d); err != nil {
			t.Fatalf("dead letter %q: %v", l, err)
		}
		out = append(out, d)
	}
	return out
}

// alertIDOf decodes the raw-template body.
func alertIDOf(t testing.TB, body []byte) (string, int) {
	t.Helper()
	var a tokenwatch.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return a.ID, a.Update
}

// quietLogger discards logs; logBuffer captures them.
func logBuffer() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
