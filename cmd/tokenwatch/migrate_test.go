package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMigrateCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	r := runCmd(t, nil, nil, append([]string{"migrate"}, args...)...)
	return r.code, r.stdout, r.stderr
}

func TestMigratePrint(t *testing.T) {
	code, out, errs := runMigrateCmd(t, "--print")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"CREATE TABLE IF NOT EXISTS tokenwatch.token_events", "ReplacingMergeTree", "-- 0001_token_events", "MODIFY TTL"} {
		if !strings.Contains(out, want) {
			t.Errorf("--print output lacks %q", want)
		}
	}
	if strings.Contains(out, "ON CLUSTER") {
		t.Error("single-node DDL has ON CLUSTER")
	}
}

func TestMigratePrintClusterFromConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tw.yaml")
	if err := os.WriteFile(p, []byte("clickhouse:\n  database: soc\n  retention:\n    token_events_days: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runMigrateCmd(t, "--config", p, "--print", "--cluster", "prod")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"soc.token_events_local ON CLUSTER prod", "ENGINE = Distributed(prod, soc, token_events_local", "INTERVAL 7 DAY"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster DDL lacks %q", want)
		}
	}
}

func TestMigrateErrors(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"no server":   {[]string{}, "clickhouse.addr"},
		"bad flag":    {[]string{"--nope"}, "flag provided but not defined"},
		"bad cluster": {[]string{"--print", "--cluster", "a b"}, "clickhouse.cluster"},
		"extra arg":   {[]string{"x"}, "unexpected argument"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, errs := runMigrateCmd(t, tc.args...)
			if code != exitUsage || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d stderr %q, want 2 and %q", code, errs, tc.want)
			}
		})
	}
	if code, out, _ := runMigrateCmd(t, "--help"); code != exitOK || !strings.Contains(out, "usage: tokenwatch migrate") {
		t.Errorf("--help: exit %d %q", code, out)
	}
}
