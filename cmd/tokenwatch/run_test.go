package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeJWT returns a well-formed (unsigned, never valid anywhere) JWT whose jti is id.
func fakeJWT(id string) string {
	enc := base64.RawURLEncoding.EncodeToString
	h := enc([]byte(`{"alg":"HS256","typ":"JWT"}`))
	p := enc([]byte(`{"iss":"https://idp.example.com","sub":"user-` + id + `","jti":"` + id + `","exp":1900000000}`))
	return h + "." + p + "." + strings.Repeat("S", 43)
}

// accessLine is an nginx combined line carrying a bearer JWT.
func accessLine(id string) string {
	return `203.0.113.7 - - [25/Nov/2026:08:00:00 +0000] "GET /api/orders HTTP/1.1" 200 512 "-" "curl/8.5" "Authorization: Bearer ` + fakeJWT(id) + `"`
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokenwatch.yaml")
	body += "\ntelemetry:\n  listen: \"\"\ndetect:\n  fingerprint_key: " + testKey + "\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type findingOut struct {
	Source      string `json:"source"`
	Line        int64  `json:"line"`
	Partition   *int32 `json:"partition"`
	Offset      *int64 `json:"offset"`
	Kind        string `json:"kind"`
	Fingerprint string `json:"fingerprint"`
	SourceKind  string `json:"source_kind"`
	IP          string `json:"ip"`
	Status      int    `json:"status"`
	JWT         struct {
		Jti string `json:"jti"`
	} `json:"jwt"`
}

func readFindings(t *testing.T, path string) []findingOut {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []findingOut
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l findingOut
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("findings line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func TestRunFiles(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := range 50 {
		lines = append(lines, accessLine(fmt.Sprint("id-", i)), `127.0.0.1 - - [25/Nov/2026:08:00:00 +0000] "GET /health HTTP/1.1" 200 2 "-" "kube-probe/1.29"`)
	}
	logPath := filepath.Join(dir, "access.log")
	if err := os.WriteFile(logPath, []byte(strings.Join(lines, "\r\n")+"\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	findings := filepath.Join(dir, "findings.jsonl")
	cfg := writeConfig(t, "ingest:\n  batch_size: 7\n  files:\n    - {path: "+dir+", kind: auth}\n")
	r := runCmd(t, nil, nil, "run", "--config", cfg, "--findings-file", findings)
	if r.code != exitOK {
		t.Fatalf("run exit %d: %s", r.code, r.stderr)
	}
	got := readFindings(t, findings)
	if len(got) != 50 {
		t.Fatalf("%d findings, want 50", len(got))
	}
	for i, f := range got {
		if f.Source != logPath || f.Line != int64(2*i+1) || f.Partition != nil || f.JWT.Jti != fmt.Sprint("id-", i) {
			t.Fatalf("finding %d: %+v", i, f)
		}
		if f.Kind != "jwt" || f.SourceKind != "auth" || f.IP != "203.0.113.7" || f.Status != 200 || len(f.Fingerprint) != 32 {
			t.Fatalf("finding %d fields: %+v", i, f)
		}
	}
	raw, _ := os.ReadFile(findings)
	if strings.Contains(string(raw), fakeJWT("id-0")) || strings.Contains(string(raw), strings.Repeat("S", 43)) {
		t.Fatal("findings file holds a raw token")
	}
}

func TestRunStdin(t *testing.T) {
	cfg := writeConfig(t, "ingest:\n  stdin: {enabled: true, kind: app}\noutput:\n  findings_file: \"-\"\n")
	in := "hello\nleaked " + fakeJWT("x1") + " in an app log\n"
	r := runCmd(t, strings.NewReader(in), nil, "run", "--config", cfg)
	if r.code != exitOK {
		t.Fatalf("run exit %d: %s", r.code, r.stderr)
	}
	var f struct {
		Source string `json:"source"`
		Line   int64  `json:"line"`
		Leak   bool   `json:"leak"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &f); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	if f.Source != "-" || f.Line != 2 || !f.Leak {
		t.Fatalf("finding %+v", f)
	}
}

func TestRunUsageAndConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		cfg  string
		want string
	}{
		{"no config flag", []string{"run"}, "", "usage: tokenwatch run"},
		{"no source", nil, "pipeline: {in_flight: 2}\n", "no source configured"},
		{"invalid", nil, "ingest:\n  stdin: {enabled: true, kind: nope}\n", `ingest.stdin.kind: unknown kind "nope"`},
		{"unknown key", nil, "ingest:\n  stdinn: {}\n", "ingest.stdinn: unknown key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.cfg != "" {
				args = []string{"run", "--config", writeConfig(t, tc.cfg)}
			}
			r := runCmd(t, nil, nil, args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
}

func TestConfigCommand(t *testing.T) {
	good := writeConfig(t, "ingest:\n  stdin: {enabled: true, kind: app}\n")
	if r := runCmd(t, nil, nil, "config", "validate", good); r.code != exitOK || r.stdout != "ok\n" {
		t.Fatalf("validate good: %d %q %q", r.code, r.stdout, r.stderr)
	}
	bad := writeConfig(t, "ingest:\n  kafka:\n    brokers: [nohostport]\n    topics: [{name: t}]\n  batch_size: 0\npipelin: {}\n")
	r := runCmd(t, nil, nil, "config", "validate", bad)
	want := []string{
		bad + ":6: pipelin: unknown key; known keys here:",
		"ingest.batch_size: must be positive, got 0",
		`ingest.kafka.brokers[0]: "nohostport" is not host:port`,
		"ingest.kafka.topics[0].kind: missing; set auth, app or revocation",
	}
	got := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != exitUsage || len(got) != len(want) {
		t.Fatalf("validate bad: exit %d, lines:\n%s", r.code, r.stdout)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
	if r := runCmd(t, nil, nil, "config", "validate", filepath.Join(t.TempDir(), "missing.yaml")); r.code != exitUsage || !strings.Contains(r.stdout, "missing.yaml") {
		t.Fatalf("missing file: %d %q", r.code, r.stdout)
	}
	// A file that is not YAML gets one line saying so, not the mistakes of
	// the empty configuration it would otherwise be validated as.
	notYAML := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(notYAML, []byte("alerts:\n  sinks: [{secrets: [${X}]}]\n"), 0o644)
	if r := runCmd(t, nil, nil, "config", "validate", notYAML); r.code != exitUsage || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, "broken.yaml: yaml: ") {
		t.Fatalf("broken YAML: %d %q", r.code, r.stdout)
	}
	d := runCmd(t, nil, nil, "config", "default")
	if d.code != exitOK || !strings.Contains(d.stdout, "group_id: tokenwatch") {
		t.Fatalf("default: %d %q", d.code, d.stderr)
	}
	// The printed default plus a source validates.
	p := filepath.Join(t.TempDir(), "d.yaml")
	os.WriteFile(p, []byte(strings.Replace(d.stdout, "  stdin:\n    enabled: false", "  stdin:\n    enabled: true", 1)), 0o600)
	if r := runCmd(t, nil, nil, "config", "validate", p); r.code != exitOK {
		t.Fatalf("default + stdin does not validate: %s", r.stdout)
	}
	if r := runCmd(t, nil, nil, "config", "frobnicate"); r.code != exitUsage {
		t.Fatalf("unknown subcommand: exit %d", r.code)
	}
}

// With ingest.state_file, a second run resumes after what the first committed.
func TestRunResumesFromStateFile(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	if err := os.WriteFile(logPath, []byte(accessLine("a")+"\n"+accessLine("b")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	findings := filepath.Join(dir, "findings.jsonl")
	cfg := writeConfig(t, "ingest:\n  state_file: "+filepath.Join(dir, "files.state")+"\n  files:\n    - {path: "+logPath+", kind: auth}\noutput:\n  findings_file: "+findings+"\n")
	run := func() {
		t.Helper()
		if r := runCmd(t, nil, nil, "run", "--config", cfg); r.code != exitOK {
			t.Fatalf("run exit %d: %s", r.code, r.stderr)
		}
	}
	run()
	if n := len(readFindings(t, findings)); n != 2 {
		t.Fatalf("first run: %d findings, want 2", n)
	}
	run() // nothing new
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(accessLine("c") + "\n")
	f.Close()
	run() // only the new line
	got := readFindings(t, findings)
	if len(got) != 3 || got[2].JWT.Jti != "c" || got[2].Line != 3 {
		t.Fatalf("findings after three runs: %+v", got)
	}
}
