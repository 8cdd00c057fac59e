package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/ingest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	y, err := DefaultYAML()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(y, "default.yaml", env(nil))
	if err != nil {
		t.Fatalf("the printed default does not load: %v\n%s", err, y)
	}
	// nil and empty lists print alike; compare what the two configs print.
	a, _ := yaml.Marshal(got)
	b, _ := yaml.Marshal(DefaultConfig())
	if string(a) != string(b) {
		t.Fatalf("round trip of the default differs:\n%s\nvs\n%s", a, b)
	}
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	in := `
ingest:
  batch_size: 100
  kafka:
    brokers: ["127.0.0.1:9092", "kafka-2:9092"]
    group_id: tw-prod
    topics:
      - {name: gateway, kind: auth}
      - {name: apps, kind: app}
    start_offset: latest
    flush_interval: 50ms
    sasl:
      mechanism: scram-sha-512
      username: tokenwatch
      password: ${KAFKA_PASSWORD}
  files:
    - path: ` + logs + `
      kind: app
pipeline:
  in_flight: 4
output:
  findings_file: /tmp/f-${SUFFIX}.jsonl
  fsync: true
`
	cfg, err := Parse([]byte(in), "tw.yaml", env(map[string]string{"KAFKA_PASSWORD": "s3cr3t $x", "SUFFIX": "a"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := DefaultConfig()
	want.Ingest.BatchSize = 100
	k := &want.Ingest.Kafka
	k.Brokers = []string{"127.0.0.1:9092", "kafka-2:9092"}
	k.GroupID = "tw-prod"
	k.Topics = []ingest.TopicConfig{{Name: "gateway", Kind: "auth"}, {Name: "apps", Kind: "app"}}
	k.StartOffset = "latest"
	k.FlushInterval = 50 * time.Millisecond
	k.SASL = ingest.SASLConfig{Mechanism: "scram-sha-512", Username: "tokenwatch", Password: "s3cr3t $x"}
	want.Ingest.Files = []ingest.FileConfig{{Path: logs, Kind: "app"}}
	want.Pipeline.InFlight = 4
	want.Output.FindingsFile = "/tmp/f-a.jsonl"
	want.Output.Fsync = true
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("Parse =\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n# only a comment\n", "---\n", "~"} {
		cfg, err := Parse([]byte(in), "", env(nil))
		if err != nil || !reflect.DeepEqual(cfg, DefaultConfig()) {
			t.Errorf("Parse(%q) = %v; want the defaults", in, err)
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	e := env(map[string]string{"A": "alpha", "EMPTY": "", "NUM": "42"})
	cases := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x-${A}-${A}-y", "x-alpha-alpha-y", ""},
		{"$HOME stays", "$HOME stays", ""},
		{"cost $5", "cost $5", ""},
		{"$${A}", "${A}", ""},
		{"${NUM}", "42", ""},
		{"${MISSING}", "", "environment variable MISSING is not set"},
		{"${EMPTY}", "", "environment variable EMPTY is not set"}, // getenv cannot tell empty from unset
		{"${A", "", "unterminated ${"},
		{"${1A}", "", "not a valid environment variable name"},
		{"${}", "", "not a valid environment variable name"},
	}
	for _, tc := range cases {
		got, err := expandString(tc.in, e)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expand(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestEnvExpansionOnlyInStringValues(t *testing.T) {
	// Keys are not expanded, and a number field given ${…} is a type error,
	// not a silent conversion.
	_, err := Parse([]byte("pipeline:\n  in_flight: ${N}\n"), "c.yaml", env(map[string]string{"N": "3"}))
	if err == nil || !strings.Contains(err.Error(), "c.yaml") || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want a type error at c.yaml line 2", err)
	}
	_, err = Parse([]byte("output:\n  ${K}: x\n"), "c.yaml", env(map[string]string{"K": "findings_file"}))
	if err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("err = %v, want unknown key (keys are not expanded)", err)
	}
	// os.Getenv is told apart: an empty but set variable expands to "".
	t.Setenv("TW_TEST_EMPTY", "")
	cfg, err := Parse([]byte("output:\n  findings_file: \"x${TW_TEST_EMPTY}\"\n"), "", os.Getenv)
	if err != nil || cfg.Output.FindingsFile != "x" {
		t.Fatalf("empty env var: %q, %v", cfg.Output.FindingsFile, err)
	}
}

func TestUnknownKeys(t *testing.T) {
	in := `ingest:
  kafka:
    brokers: [a:1]
    topics:
      - name: t
        kind: auth
        partitions: 3
    gruop_id: x
detect:
  max_token_len: 100
outptu: {}
`
	_, err := Parse([]byte(in), "tw.yaml", env(nil))
	got := Problems(err)
	want := []string{
		"tw.yaml:7: ingest.kafka.topics[0].partitions: unknown key; known keys here: kind, name",
		"tw.yaml:8: ingest.kafka.gruop_id: unknown key; known keys here: ",
		"tw.yaml:11: outptu: unknown key; known keys here: ",
	}
	if len(got) != len(want) {
		t.Fatalf("problems %q, want %d", got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
	if !strings.Contains(got[1], "group_id") {
		t.Errorf("the known keys should list group_id: %q", got[1])
	}
}

type selfDecoding struct{ v map[string]any }

func (s *selfDecoding) UnmarshalYAML(n *yaml.Node) error { return n.Decode(&s.v) }

// A type that decodes itself decides which keys it accepts.
func TestCheckKeysSkipsUnmarshalers(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("custom: {anything: 1}\n"), &doc); err != nil {
		t.Fatal(err)
	}
	type root struct {
		Custom selfDecoding `yaml:"custom"`
	}
	var errs errorList
	checkKeys(doc.Content[0], reflect.TypeOf(root{}), "", "x.yaml", &errs)
	if len(errs) != 0 {
		t.Fatalf("errs %v", errs)
	}
}

func TestSyntaxAndTypeErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"syntax", "ingest:\n  batch_size: [1,\n", "tw.yaml: yaml: line"},
		{"type", "ingest:\n  batch_size: many\n", "tw.yaml: line 2: cannot unmarshal !!str `many` into int"},
		{"duration", "ingest:\n  flush_interval: soon\n", "tw.yaml: line 2"},
		{"not a mapping", "- a\n- b\n", "tw.yaml:1: the configuration must be a mapping"},
		{"two documents", "ingest: {}\n---\nparse: {}\n", "a second YAML document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), "tw.yaml", env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Every validation mistake is reported, each with its field path.
func TestValidateCollectsAll(t *testing.T) {
	in := `
ingest:
  max_record_bytes: 0
  kafka:
    brokers: ["nohostport"]
    group_id: ""
    topics:
      - {name: a, kind: auth}
      - {name: a, kind: logs}
      - {name: "", kind: ""}
    start_offset: middle
    heartbeat_interval: 1m
    tls: {ca_file: /nonexistent/ca.pem}
    sasl: {mechanism: gssapi}
  files:
    - {path: /nonexistent/x.log, kind: auth}
    - {path: "", start_at: end}
  stdin: {enabled: true, kind: nope}
detect:
  max_token_len: 1
pipeline:
  in_flight: 0
output:
  findings_file: "-"
  fsync: true
`
	cfg, err := Parse([]byte(in), "tw.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Problems(cfg.Validate()), "\n")
	for _, want := range []string{
		"ingest.max_record_bytes: must be positive",
		`ingest.kafka.brokers[0]: "nohostport" is not host:port`,
		"ingest.kafka.group_id: must not be empty",
		`ingest.kafka.topics[1].name: topic "a" is listed twice`,
		`ingest.kafka.topics[1].kind: unknown kind "logs"`,
		"ingest.kafka.topics[2].name: must not be empty",
		"ingest.kafka.topics[2].kind: missing; set auth, app or revocation",
		`ingest.kafka.start_offset: "middle" is not earliest or latest`,
		"ingest.kafka.heartbeat_interval: 1m0s must be shorter than session_timeout 30s",
		"ingest.kafka.tls.enabled: tls options are set but tls is not enabled",
		`ingest.kafka.tls.ca_file: file "/nonexistent/ca.pem"`,
		`ingest.kafka.sasl.mechanism: "gssapi" is not plain, scram-sha-256 or scram-sha-512`,
		`ingest.files[0].path: "/nonexistent/x.log"`,
		"ingest.files[1].path: must not be empty",
		"ingest.files[1].start_at: end only makes sense with follow: true",
		`ingest.stdin.kind: unknown kind "nope"`,
		"detect.max_token_len:",
		"pipeline.in_flight: 0 is out of range",
		"output.fsync: stdout cannot be fsynced",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing problem %q in:\n%s", want, got)
		}
	}
	if n := len(Problems(cfg.Validate())); n != 19 {
		t.Errorf("%d problems, want 19:\n%s", n, got)
	}
}

func TestValidateSASLAndTLS(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Ingest.Kafka.Brokers = []string{"k:9092"}
	cfg.Ingest.Kafka.Topics = []ingest.TopicConfig{{Name: "t", Kind: "auth"}}
	cfg.Ingest.Kafka.SASL = ingest.SASLConfig{Mechanism: "plain"}
	cfg.Ingest.Kafka.TLS = ingest.TLSConfig{Enabled: true, CertFile: "/x.pem"}
	got := strings.Join(Problems(cfg.Validate()), "\n")
	for _, want := range []string{
		"ingest.kafka.sasl.username: must not be empty with mechanism plain",
		"ingest.kafka.sasl.password: must not be empty with mechanism plain; use ${ENV_VAR}",
		"ingest.kafka.tls: cert_file and key_file go together",
		`ingest.kafka.tls.cert_file: file "/x.pem"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestLoadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tw.yaml")
	if err := os.WriteFile(p, []byte("pipeline:\n  in_flight: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil || cfg.Pipeline.InFlight != 3 {
		t.Fatalf("Load = %+v, %v", cfg.Pipeline, err)
	}
	if _, err := Load(p + ".missing"); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("ingest:\n  kafka:\n    brokers: [a:1]\n    topics: [{name: t, kind: auth}]\n"))
	f.Add([]byte("output: {findings_file: ${X}}\n"))
	f.Add([]byte("a: &x {b: 1}\nc: *x\n"))
	f.Add([]byte("ingest:\n  <<: {batch_size: 3}\n"))
	f.Add([]byte("- [\n"))
	f.Add([]byte("pipeline:\n  retry: {max_attempts: 2, initial_backoff: 1s, max_backoff: 2s}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml", env(map[string]string{"X": "v"}))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		_ = Problems(cfg.Validate())
	})
}
