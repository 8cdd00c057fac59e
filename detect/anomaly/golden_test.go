package anomaly

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestGoldenAlerts pins the alerts of the mixed scenario (ids, evidence,
// summaries) as JSON lines; run with -update after an intended change.
func TestGoldenAlerts(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.Shards = 8 })
	b := &tokenwatch.Batch{
		Uses: scenario(),
		Revocations: []tokenwatch.Revocation{
			{Fingerprint: fp(3), Time: t0.Add(3 * time.Hour), Reason: "logout"},
			{JTI: "nope", Time: t0},
		},
	}
	// Planted incidents on top of the random traffic.
	b.Uses = append(b.Uses,
		use(200, 0, frankfurt), use(200, 11*time.Minute, sydney),
		use(201, 0, place{}, asLeak("billing")), use(201, 3*time.Hour, moscow),
		use(202, 0, berlinHome, withExp(t0.Add(-2*time.Hour))),
		use(203, 0, berlinHome, withAlgNone()),
		use(204, 0, berlinHome), use(204, time.Minute, berlinLTE, withUA(uaCurl)),
	)
	if err := e.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range b.Alerts {
		if err := enc.Encode(&b.Alerts[i]); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join("testdata", "scenario_alerts.golden.jsonl")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGoldenAlerts -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		got := bytes.Split(buf.Bytes(), []byte("\n"))
		exp := bytes.Split(want, []byte("\n"))
		for i := range max(len(got), len(exp)) {
			var g, w []byte
			if i < len(got) {
				g = got[i]
			}
			if i < len(exp) {
				w = exp[i]
			}
			if !bytes.Equal(g, w) {
				t.Fatalf("alerts differ from %s at line %d:\n got %s\nwant %s\n(run with -update after an intended change)", path, i+1, g, w)
			}
		}
	}
	for _, typ := range alertTypes {
		if !slices.Contains(types(b.Alerts), typ) {
			t.Errorf("golden scenario raises no %s", typ)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
shards: 8
max_tokens: 5000
idle_ttl: 12h
clock_skew: 30s
ignore_asns: [13335]
severity:
  impossible_travel: critical
impossible_travel:
  max_speed_kmh: 1000
concurrent_replay:
  window: 2m
  user_agent_families: false
expired_token_accepted:
  leeway: 5m
scale_out:
  brokers: ["127.0.0.1:9092"]
`
	cfg := DefaultConfig()
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Shards != 8 || cfg.MaxTokens != 5000 || cfg.IdleTTL != 12*time.Hour || cfg.ClockSkew != 30*time.Second ||
		!slices.Equal(cfg.IgnoreASNs, []uint32{13335}) || cfg.Severity[tokenwatch.AlertImpossibleTravel] != tokenwatch.SeverityCritical ||
		cfg.ImpossibleTravel.MaxSpeedKmh != 1000 || !cfg.ImpossibleTravel.Enabled || cfg.ImpossibleTravel.MinDistanceKm != 500 ||
		cfg.ConcurrentReplay.Window != 2*time.Minute || cfg.ConcurrentReplay.UserAgentFamilies ||
		cfg.ExpiredTokenAccepted.Leeway != 5*time.Minute || cfg.ScaleOut.UsesTopic != "tokenwatch.uses" ||
		len(cfg.ScaleOut.Brokers) != 1 {
		t.Errorf("decoded config: %+v", cfg)
	}
}
