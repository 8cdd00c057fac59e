package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/alerts"
)

type alertsCLIResult struct {
	code           int
	stdout, stderr string
}

// runAlertsCmd runs the CLI in process with ctx.
func runAlertsCmd(ctx context.Context, stdin io.Reader, args ...string) alertsCLIResult {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: stdin, stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := runCLI(ctx, env, args)
	return alertsCLIResult{code, out.String(), errb.String()}
}

type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	ids    []string
	status int
}

func newHookServer(t *testing.T, status int) *hookServer {
	h := &hookServer{status: status}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		h.ids = append(h.ids, r.Header.Get("webhook-id"))
		st := h.status
		h.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.ids) }

func writeAlertsConfig(t *testing.T, dir, url string) string {
	cfg := fmt.Sprintf(`alerts:
  sinks:
    - name: soar
      type: webhook
      url: %s/rest/container
      template: splunk_soar
      secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
      headers: {ph-auth-token: "soar-api-token"}
  default_sinks: [soar]
  outbox: {file: %s}
  dead_letter: {file: %s}
  retry: {initial_backoff: 5ms, max_backoff: 20ms, max_attempts: 2}
  circuit_breaker: {failures: 100}
  dispatcher: {state_file: %s, commit_interval: 10ms}
`, url, filepath.Join(dir, "outbox.jsonl"), filepath.Join(dir, "dlq.jsonl"), filepath.Join(dir, "state.json"))
	p := filepath.Join(dir, "tw.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func cliAlert(n int) tokenwatch.Alert {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	return tokenwatch.Alert{ID: fmt.Sprintf("al-%d", n), Type: tokenwatch.AlertTokenLeak, Severity: tokenwatch.SeverityHigh,
		Fingerprint: fmt.Sprintf("%032x", n), EventTime: t0, DetectedAt: t0, Summary: "leak"}
}

func TestAlertsDryRunCommand(t *testing.T) {
	h := newHookServer(t, 200)
	dir := t.TempDir()
	cfg := writeAlertsConfig(t, dir, h.URL)
	var in bytes.Buffer
	for i := range 2 {
		b, _ := json.Marshal(cliAlert(i))
		in.Write(append(b, '\n'))
	}
	r := runAlertsCmd(context.Background(), &in, "alerts", "dry-run", "--config", cfg, "-")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"POST " + h.URL + "/rest/container", "Webhook-Signature: v1,", "Webhook-Id: msg_", "User-Agent: tokenwatch/", `"source_data_identifier": "al-1"`, "Ph-Auth-Token: [redacted]"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "soar-api-token") {
		t.Error("dry run printed a configured secret header")
	}
	if h.count() != 0 {
		t.Fatal("dry run sent requests")
	}
}

func TestAlertsDispatchAndReplayCommands(t *testing.T) {
	h := newHookServer(t, 500)
	dir := t.TempDir()
	cfg := writeAlertsConfig(t, dir, h.URL)
	var lines []byte
	for i := range 3 {
		b, _ := json.Marshal(alerts.Envelope{Alert: cliAlert(i), EnqueuedAt: time.Now().UTC()})
		lines = append(append(lines, b...), '\n')
	}
	os.WriteFile(filepath.Join(dir, "outbox.jsonl"), lines, 0o600)

	// The sink fails: after 2 attempts each alert is dead-lettered.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan alertsCLIResult)
	go func() { done <- runAlertsCmd(ctx, nil, "alerts", "dispatch", "--config", cfg) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "dlq.jsonl"))
		if bytes.Count(b, []byte("\n")) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 3 dead letters")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if r := <-done; r.code != exitOK {
		t.Fatalf("dispatch exit %d: %s", r.code, r.stderr)
	}
	if h.count() != 6 {
		t.Fatalf("%d requests, want 2 attempts x 3 alerts", h.count())
	}

	// The sink recovers: replay re-sends the three with their webhook-ids.
	h.mu.Lock()
	h.status, h.ids = 200, nil
	h.mu.Unlock()
	r := runAlertsCmd(context.Background(), nil, "alerts", "replay", "--config", cfg)
	if r.code != exitOK || !strings.Contains(r.stdout, "replayed 3 dead letters") {
		t.Fatalf("replay exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if h.count() != 3 || !slices.Contains(h.ids, alerts.WebhookID("al-0", 0, "soar")) {
		t.Fatalf("replayed ids %v", h.ids)
	}
	// A second replay finds nothing new.
	r = runAlertsCmd(context.Background(), nil, "alerts", "replay", "--config", cfg)
	if r.code != exitOK || !strings.Contains(r.stdout, "replayed 0 dead letters") {
		t.Fatalf("second replay: %s %s", r.stdout, r.stderr)
	}
}

func TestAlertsUsage(t *testing.T) {
	if r := runAlertsCmd(context.Background(), nil, "alerts"); r.code != exitUsage {
		t.Fatalf("exit %d", r.code)
	}
	if r := runAlertsCmd(context.Background(), nil, "alerts", "dispatch"); r.code != exitUsage || !strings.Contains(r.stderr, "--config") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}

func FuzzDecodeAlertLine(f *testing.F) {
	for _, s := range []string{`{"id":"a","type":"token_leak"}`, `{"alert":{"id":"a","type":"t"},"sealed":"AQ=="}`, `{`, `[]`, `{"alert":1}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeAlertLine(b)
		if err == nil && (e.Alert.ID == "" || e.Alert.Type == "" || e.EnqueuedAt.IsZero()) {
			t.Fatalf("accepted %q as %+v", b, e)
		}
	})
}
