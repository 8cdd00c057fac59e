//go:build integration

package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/testenv"
	"github.com/tokenwatch/tokenwatch/store"
)

// TestRunFillsClickHouse runs `tokenwatch run` over log files with a
// ClickHouse configured (the 18.16 test server, with the tables of
// store/testdata/clickhouse18 created beforehand and clickhouse.migrate off,
// because 18.16 cannot run the current DDL) and checks the tables filled.
func TestRunFillsClickHouse(t *testing.T) {
	addr := testenv.ClickHouseAddr(t)
	cfg := store.DefaultConfig()
	cfg.Addr = []string{addr}
	cfg.Database = fmt.Sprintf("tw_run_%d", time.Now().UnixNano()%1e9)
	conn, err := store.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database) })
	ddl, err := os.ReadFile("../../store/testdata/clickhouse18/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strings.Split(strings.ReplaceAll(string(ddl), "{{db}}", cfg.Database), ";\n") {
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				lines = append(lines, l)
			}
		}
		if s = strings.TrimSpace(strings.Join(lines, "\n")); s != "" {
			if err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("schema: %v", err)
			}
		}
	}

	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	jwt := b64(`{"alg":"RS256","typ":"JWT"}`) + "." + b64(`{"iss":"https://idp.example.com","sub":"bob","exp":4102444800,"iat":1767225600,"jti":"jti-run-1"}`) + "." + b64("signature-bytes-for-the-run-test-0123456789")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	app := write("app.log", `{"ts":"2026-11-25T08:00:00Z","service":"checkout","msg":"calling payments with `+jwt+`"}`+"\n"+
		`{"ts":"2026-11-25T08:00:01Z","service":"checkout","msg":"nothing secret here"}`+"\n")
	auth := write("auth.log", `{"time":"2026-11-25T08:05:00Z","remote_addr":"81.2.69.142","method":"GET","path":"/api/orders","status":200,"service":"orders-api","authorization":"Bearer `+jwt+`"}`+"\n")
	rev := write("rev.log", `{"jti":"jti-run-1","iss":"https://idp.example.com","time":"2026-11-25T08:06:00Z"}`+"\n")
	conf := write("tw.yaml", fmt.Sprintf(`ingest:
  files:
    - {path: %q, kind: app}
    - {path: %q, kind: auth}
    - {path: %q, kind: revocation}
detect:
  key_file: %q
clickhouse:
  addr: [%q]
  database: %s
  migrate: false
telemetry:
  listen: "127.0.0.1:0"
`, app, auth, rev, filepath.Join(dir, "key"), addr, cfg.Database))

	r := runCmd(t, nil, nil, "run", "--config", conf, "--alerts-file", filepath.Join(dir, "alerts.jsonl"))
	if r.code != exitOK {
		t.Fatalf("run exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	for table, want := range map[string]uint64{"token_events": 2, "findings": 1, "revocations": 1} {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+cfg.Database+"."+table+" FINAL").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n < want {
			t.Errorf("%s: %d rows after run, want at least %d", table, n, want)
		}
	}
	var leaks uint64
	if err := conn.QueryRow(ctx, "SELECT countIf(leak = 1 AND service = 'checkout') FROM "+cfg.Database+".token_events").Scan(&leaks); err != nil || leaks != 1 {
		t.Errorf("checkout leak sightings = %d (%v), want 1", leaks, err)
	}
	var alerts []string
	rows, err := conn.Query(ctx, "SELECT type FROM "+cfg.Database+".alerts ORDER BY type")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ty string
		if err := rows.Scan(&ty); err != nil {
			t.Fatal(err)
		}
		alerts = append(alerts, ty)
	}
	rows.Close()
	t.Logf("alerts stored by run: %v", alerts)
}
