package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/bench/scenario"
	"github.com/tokenwatch/tokenwatch/config"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1GB", 1e9, true},
		{"1.5gb", 1.5e9, true},
		{"200MB", 200e6, true},
		{" 512 KB ", 512e3, true},
		{"1000", 1000, true},
		{"10B", 10, true},
		{"GB", 0, false},
		{"lots", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestConfigTemplate renders the configuration the benchmark and the demo
// give tokenwatch run, and checks that tokenwatch's own loader accepts it and
// reads what was meant.
func TestConfigTemplate(t *testing.T) {
	tp := newTopics("tw-e2e-1")
	for _, tc := range []struct {
		name string
		c    twConfig
	}{
		{"bench", twConfig{Live: true, Telemetry: "127.0.0.1:9999", BatchSize: 16384, InFlight: 4, Migrate: false}},
		{"bench without store", twConfig{Live: true, NoStore: true, NoStateLog: true}},
		{"demo", twConfig{Migrate: true, CHUser: "tokenwatch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := tc.c
			c.Broker, c.Group, c.Topics = "127.0.0.1:19092", "g", tp
			c.ClickHouse, c.DB = "127.0.0.1:19000", "tw_e2e_1"
			c.WebhookURL, c.Secret = "http://127.0.0.1:1/hook", "whsec_"+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef01234567"))
			c.StateFile, c.Key, c.Dir = filepath.Join(dir, "state.json"), benchKey, dir
			c.TrustedProxies = scenario.TrustedProxies
			for _, f := range []string{"city.mmdb", "asn.mmdb", "policy.yaml"} {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "tw.yaml")
			if err := writeConfig(path, c); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(b, path, func(k string) string {
				if k == "CLICKHOUSE_PASSWORD" {
					return "pw"
				}
				return ""
			})
			if err != nil {
				t.Fatalf("config.Parse: %v\n%s", err, b)
			}
			wantTopics := map[string]string{tp.Auth: "auth", tp.App: "app", tp.Revocation: "revocation"}
			if c.Live {
				wantTopics[tp.Live] = "app"
			}
			got := map[string]string{}
			for _, tt := range cfg.Ingest.Kafka.Topics {
				got[tt.Name] = tt.Kind
			}
			if fmt.Sprint(got) != fmt.Sprint(wantTopics) {
				t.Errorf("topics %v, want %v", got, wantTopics)
			}
			if store := len(cfg.ClickHouse.Addr) > 0; store == c.NoStore {
				t.Errorf("clickhouse.addr %v with NoStore %v", cfg.ClickHouse.Addr, c.NoStore)
			}
			if !c.NoStore && (cfg.ClickHouse.Database != c.DB || cfg.ClickHouse.Migrate != c.Migrate || cfg.ClickHouse.Password != "pw") {
				t.Errorf("clickhouse: database %q migrate %v password set %v", cfg.ClickHouse.Database, cfg.ClickHouse.Migrate, cfg.ClickHouse.Password == "pw")
			}
			if c.BatchSize != 0 && cfg.Ingest.Kafka.BatchSize != c.BatchSize {
				t.Errorf("batch_size %d, want %d", cfg.Ingest.Kafka.BatchSize, c.BatchSize)
			}
			if c.InFlight != 0 && cfg.Pipeline.InFlight != c.InFlight {
				t.Errorf("in_flight %d, want %d", cfg.Pipeline.InFlight, c.InFlight)
			}
			if cfg.Anomaly.StateLog.Disabled != c.NoStateLog {
				t.Errorf("anomaly.state_log.disabled %v, want %v", cfg.Anomaly.StateLog.Disabled, c.NoStateLog)
			}
			if cfg.Telemetry.Listen != c.Telemetry {
				t.Errorf("telemetry.listen %q, want %q", cfg.Telemetry.Listen, c.Telemetry)
			}
			if len(cfg.Alerts.Sinks) != 1 || cfg.Alerts.Sinks[0].URL != c.WebhookURL || !cfg.Alerts.Dispatcher.InProcess {
				t.Errorf("alerts: sinks %+v, in-process %v", cfg.Alerts.Sinks, cfg.Alerts.Dispatcher.InProcess)
			}
			if cfg.Detect.FingerprintKey != benchKey {
				t.Errorf("fingerprint key not passed on")
			}
			if bytes.Contains(b, []byte("pw")) {
				t.Errorf("the password reached the file")
			}
		})
	}
}

func TestProcStatsSelf(t *testing.T) {
	hwm, cpu, err := procStats(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if hwm <= 0 {
		t.Errorf("VmHWM %d, want > 0", hwm)
	}
	if cpu < 0 {
		t.Errorf("CPU %v, want >= 0", cpu)
	}
}

func TestScrapeMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `# HELP tokenwatch_pipeline_stage_seconds Time one stage took on one batch (one attempt).
# TYPE tokenwatch_pipeline_stage_seconds histogram
tokenwatch_pipeline_stage_seconds_bucket{stage="scan",le="0.0001"} 0
tokenwatch_pipeline_stage_seconds_sum{stage="scan"} 1.5
tokenwatch_pipeline_stage_seconds_count{stage="scan"} 10
tokenwatch_pipeline_stage_seconds_sum{stage="store"} 12.25
tokenwatch_store_insert_duration_seconds_sum{table="token_events"} 3
tokenwatch_store_insert_duration_seconds_count{table="token_events"} 20
tokenwatch_store_insert_duration_seconds_sum{table="alerts"} 1
tokenwatch_store_insert_duration_seconds_count{table="alerts"} 5
tokenwatch_store_insert_errors_total{table="alerts"} 2
`)
	}))
	defer srv.Close()
	m, err := scrapeMetrics(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if m.stageSec["scan"] != 1.5 || m.stageSec["store"] != 12.25 || len(m.stageSec) != 2 {
		t.Errorf("stage seconds %v", m.stageSec)
	}
	if m.inserts != 25 || m.insertSec != 4 || m.insertErrors != 2 {
		t.Errorf("inserts %v in %v s, %v errors; want 25, 4, 2", m.inserts, m.insertSec, m.insertErrors)
	}
}

func TestLatencies(t *testing.T) {
	l := &latencies{sent: map[string]time.Time{}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		l.sending(fmt.Sprint(i), t0)
	}
	for i := range 100 {
		l.received(tokenwatch.Alert{Type: tokenwatch.AlertTokenLeak, JTI: fmt.Sprint(i)}, t0.Add(time.Duration(i+1)*time.Millisecond))
	}
	// Other alerts, updates and unknown ids are ignored.
	l.received(tokenwatch.Alert{Type: tokenwatch.AlertImpossibleTravel, JTI: "x"}, t0)
	l.received(tokenwatch.Alert{Type: tokenwatch.AlertTokenLeak, JTI: "5", Update: 1}, t0)
	if l.pending() != 0 || l.count() != 100 {
		t.Fatalf("pending %d, count %d", l.pending(), l.count())
	}
	p50, p99, mx := l.percentiles()
	if p50 != 51 || p99 != 100 || mx != 100 {
		t.Errorf("p50 %v p99 %v max %v; want 51 100 100", p50, p99, mx)
	}
}

func TestTriggerJWTIsFound(t *testing.T) {
	tok := triggerJWT("e2e-trigger-7")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ JTI string }
	if err := json.Unmarshal(p, &claims); err != nil || claims.JTI != "e2e-trigger-7" {
		t.Errorf("claims %s: jti %q (%v)", p, claims.JTI, err)
	}
}
