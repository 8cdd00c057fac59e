package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/bench/scenario"
)

// TestRunScenarioFiles is issue 5's acceptance check on the product path:
// `tokenwatch run` reads the generated logs as files (each file at its own
// pace, so streams arrive out of event-time order), with the generated GeoIP
// databases and policy, and must report every planted incident and posture
// case and nothing benign.
func TestRunScenarioFiles(t *testing.T) {
	dir := t.TempDir()
	sc := scenario.DefaultConfig()
	sc.Users = 60
	truth, err := scenario.Generate(dir, sc)
	if err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	cfg := fmt.Sprintf(`ingest:
  files:
    - {path: %q, kind: revocation}
    - {path: %q, kind: auth}
    - {path: %q, kind: auth}
    - {path: %q, kind: app}
parse:
  trusted_proxies: [127.0.0.0/8, 10.0.0.0/8, %s]
detect:
  fingerprint_key: %q
enrich:
  city_db: %q
  asn_db: %q
policy:
  file: %q
telemetry:
  listen: ""
`, p(scenario.FileRevocations), p(scenario.FileNginx), p(scenario.FileEnvoy), p(scenario.FileApp),
		strings.Join(scenario.TrustedProxies, ", "), string(sc.Key), p(scenario.FileCityDB), p(scenario.FileASNDB), p(scenario.FilePolicy))
	cfgPath := p("tokenwatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	alertsPath := p("alerts.jsonl")
	var stdout, stderr bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := runCLI(context.Background(), env, []string{"run", "--config", cfgPath, "--alerts-file", alertsPath}); code != exitOK {
		t.Fatalf("run exit %d: %s", code, stderr.String())
	}
	f, err := os.Open(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	alerts, err := scenario.ReadAlerts(f)
	if err != nil {
		t.Fatal(err)
	}
	r := scenario.Evaluate(truth, alerts)
	var sb strings.Builder
	r.Print(&sb)
	if len(r.Missed) > 0 || len(r.FalseAlerts) > 0 || len(r.Unexpected) > 0 || len(r.PostureMissed) > 0 || len(r.PostureFalse) > 0 {
		t.Errorf("tokenwatch run on the scenario files:\n%s", sb.String())
	} else {
		t.Logf("\n%s", sb.String())
	}
}
