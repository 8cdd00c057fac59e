package testenv

import (
	"context"
	"net"
	"testing"
	"time"
)

// EnvClickHouse names the environment variable with the native-protocol address of
// the test clickhouse-server.
const EnvClickHouse = "TOKENWATCH_TEST_CLICKHOUSE"

// ClickHouseAddr returns host:port of the native protocol of the test clickhouse-server
// 18.16 (env TOKENWATCH_TEST_CLICKHOUSE, e.g. "127.0.0.1:19000"); it skips the test
// when unset.
//
// 18.16 predates many current features: INSERT needs an explicit column list
// (`INSERT INTO t (a, b) VALUES`), and there is no Map, LowCardinality in keys,
// TTL, or DateTime64. SQL that must run on a current server is checked with NewCHDB.
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	addr := skipUnless(t, EnvClickHouse, "clickhouse-server")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("%s=%q: want host:port: %v", EnvClickHouse, addr, err)
	}
	return addr
}

// RestartClickHouse stops and starts the test clickhouse-server, keeping its data
// (scripts/clickhouse.sh restart); it returns when the server answers SELECT 1.
func RestartClickHouse(t testing.TB) {
	t.Helper()
	clickhouseScript(t, "restart")
}

// StopClickHouse stops the test clickhouse-server (scripts/clickhouse.sh stop). The
// server is started again when the test ends if the test did not do so itself, so a
// failing test does not leave it down for the tests after it.
func StopClickHouse(t testing.TB) {
	t.Helper()
	clickhouseScript(t, "stop")
	env := clickhouseEnv(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		// start is a no-op when the server already runs.
		if out, err := runScript(ctx, env, "clickhouse.sh", "start"); err != nil {
			t.Errorf("StopClickHouse cleanup: start clickhouse-server again: %v\n%s", err, out)
		}
	})
}

// StartClickHouse starts the test clickhouse-server (scripts/clickhouse.sh start) and
// returns when it answers SELECT 1; it does nothing when the server already runs.
func StartClickHouse(t testing.TB) {
	t.Helper()
	clickhouseScript(t, "start")
}

func clickhouseScript(t testing.TB, op string) {
	t.Helper()
	env := clickhouseEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := runScript(ctx, env, "clickhouse.sh", op)
	if err != nil {
		t.Fatalf("clickhouse-server %s: %v\n%s", op, err, out)
	}
	t.Logf("clickhouse-server %s: done", op)
}

// clickhouseEnv points the script at the port the test uses.
func clickhouseEnv(t testing.TB) []string {
	t.Helper()
	_, port, _ := net.SplitHostPort(ClickHouseAddr(t))
	return []string{"CLICKHOUSE_TCP_PORT=" + port}
}
