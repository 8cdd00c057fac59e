package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/detect"
)

// TestDemo runs the demo in process on a small scenario: every planted incident
// is caught, nothing benign alerts, the report and outputs are written, and
// nothing it wrote holds a credential.
func TestDemo(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	code := runCLI(context.Background(), env, []string{"demo", "--out", out, "--users", "20"})
	if code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"incidents caught: 48/48", "false alerts on benign look-alikes and ordinary traffic: 0", "posture cases reported: 27/27", "signatures verified: 80, rejected: 0"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "100%") {
		t.Errorf("no progress line on stderr:\n%s", stderr.String())
	}
	html, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil || !bytes.Contains(html, []byte(`class="land"`)) || !bytes.Contains(html, []byte("impossible_travel")) {
		t.Fatalf("report.html missing or incomplete (%v)", err)
	}
	// Nothing tokenwatch wrote holds a credential: scan every output with the
	// scanner itself (the scenario's inputs are the only files that may).
	sc, err := detect.New(detect.WithKey([]byte(demoKey)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"report.html", "alerts.jsonl", "findings.jsonl", "outbox.jsonl"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range bytes.Split(b, []byte("\n")) {
			if f := sc.Scan(line, nil); len(f) > 0 {
				t.Errorf("%s line %d holds a %s credential (%s)", name, i+1, f[0].Kind, f[0].Redacted)
				break
			}
		}
	}
	if n := bytes.Count(mustRead(t, filepath.Join(out, "alerts.jsonl")), []byte("\n")); n != 80 {
		t.Errorf("alerts.jsonl has %d alerts, want 80", n)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
