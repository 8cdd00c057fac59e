//go:build integration

package store_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/testenv"
	"github.com/tokenwatch/tokenwatch/store"
	"github.com/tokenwatch/tokenwatch/store/storetest"
)

// chdbExecer runs migrations on a chDB session.
type chdbExecer struct{ c *testenv.CHDB }

func (e chdbExecer) Exec(_ context.Context, stmt string) error { return e.c.Exec(stmt) }

func (e chdbExecer) QueryUint32s(_ context.Context, q string) ([]uint32, error) {
	rows, cols, err := e.c.Query(q)
	if err != nil {
		return nil, err
	}
	out := make([]uint32, 0, len(rows))
	for _, r := range rows {
		var v uint32
		if _, err := fmt.Sscan(fmt.Sprint(r[cols[0]]), &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// queryInt runs a one-value query.
func queryInt(t *testing.T, c *testenv.CHDB, q string) int64 {
	t.Helper()
	rows, cols, err := c.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if len(rows) != 1 {
		t.Fatalf("%s: %d rows, want 1", q, len(rows))
	}
	var v int64
	if _, err := fmt.Sscan(fmt.Sprint(rows[0][cols[0]]), &v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// seed applies migrations and inserts the storetest data set, times copies.
func seed(t *testing.T, c *testenv.CHDB, copies int, now time.Time) storetest.DataSet {
	t.Helper()
	ctx := context.Background()
	cfg := store.DefaultConfig()
	if _, err := store.Migrate(ctx, chdbExecer{c}, cfg); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	ds := storetest.Generate(now)
	rows, err := ds.Rows()
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := rows.InsertStatements(cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	for range copies {
		for _, s := range stmts {
			if err := c.Exec(s); err != nil {
				t.Fatalf("insert: %v", err)
			}
		}
	}
	return ds
}

func TestMigrateCHDB(t *testing.T) {
	c := testenv.NewCHDB(t)
	ctx := context.Background()
	cfg := store.DefaultConfig()
	res, err := store.Migrate(ctx, chdbExecer{c}, cfg)
	if err != nil {
		t.Fatalf("first migrate: %v", err)
	}
	ms, _ := store.Migrations(cfg)
	if len(res.Applied) != len(ms) || len(res.Skipped) != 0 {
		t.Fatalf("first migrate applied %v skipped %v, want all %d applied", res.Applied, res.Skipped, len(ms))
	}
	res, err = store.Migrate(ctx, chdbExecer{c}, cfg)
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if len(res.Applied) != 0 || len(res.Skipped) != len(ms) {
		t.Fatalf("second migrate applied %v, want none", res.Applied)
	}
	// Every statement is idempotent on its own: re-running them all (as a
	// migrator interrupted before recording its version would) succeeds.
	for _, m := range ms {
		for _, s := range m.Statements {
			if err := c.Exec(s); err != nil {
				t.Errorf("re-run %04d_%s: %v", m.Version, m.Name, err)
			}
		}
	}
	tables, cols, err := c.Query("SELECT name, engine FROM system.tables WHERE database = 'tokenwatch' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range tables {
		got[fmt.Sprint(r[cols[0]])] = fmt.Sprint(r[cols[1]])
	}
	want := map[string]string{
		"token_events": "ReplacingMergeTree", "findings": "ReplacingMergeTree", "alerts": "ReplacingMergeTree",
		"revocations": "ReplacingMergeTree", "deliveries": "ReplacingMergeTree", "schema_migrations": "ReplacingMergeTree",
		"alerts_latest": "View", "leaks_hourly": "AggregatingMergeTree", "leaks_hourly_mv": "MaterializedView",
		"alerts_minutely": "AggregatingMergeTree", "alerts_minutely_mv": "MaterializedView",
		"uses_minutely": "AggregatingMergeTree", "uses_minutely_mv": "MaterializedView",
	}
	for n, e := range want {
		if got[n] != e {
			t.Errorf("table %s: engine %q, want %q", n, got[n], e)
		}
	}
	// The TTL from the config is in the DDL.
	ddl := queryString(t, c, "SELECT create_table_query FROM system.tables WHERE database = 'tokenwatch' AND name = 'token_events'")
	if !strings.Contains(ddl, "TTL toDateTime(event_time) + toIntervalDay(90)") {
		t.Errorf("token_events DDL lacks the 90-day TTL:\n%s", ddl)
	}
	// A changed retention applies to the existing table.
	cfg.Retention.TokenEvents = 30
	if _, err := store.Migrate(ctx, chdbExecer{c}, cfg); err != nil {
		t.Fatal(err)
	}
	ddl = queryString(t, c, "SELECT create_table_query FROM system.tables WHERE database = 'tokenwatch' AND name = 'token_events'")
	if !strings.Contains(ddl, "toIntervalDay(30)") {
		t.Errorf("retention change not applied:\n%s", ddl)
	}
}

func queryString(t *testing.T, c *testenv.CHDB, q string) string {
	t.Helper()
	rows, cols, err := c.Query(q)
	if err != nil || len(rows) != 1 {
		t.Fatalf("%s: %v (%d rows)", q, err, len(rows))
	}
	return fmt.Sprint(rows[0][cols[0]])
}

// TestClusterDDLParses checks every statement of the cluster variant with
// EXPLAIN AST: chDB has no Keeper, so Replicated tables cannot be created,
// but the parser must accept ON CLUSTER, the engines and Distributed.
func TestClusterDDLParses(t *testing.T) {
	c := testenv.NewCHDB(t)
	cfg := store.DefaultConfig()
	cfg.Cluster = "tw_cluster"
	script, err := store.Script(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range strings.Split(script, ";\n") {
		s = strings.TrimSpace(stripLineComments(s))
		if s == "" {
			continue
		}
		if _, _, err := c.Query("EXPLAIN AST " + s); err != nil {
			t.Errorf("cluster statement does not parse: %v", err)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d cluster statements checked", n)
	}
}

func stripLineComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestReplayInvisible inserts the whole data set twice, as a replay after a
// crash would, and checks that FINAL, the alerts_latest view and the
// aggregate views count every row once.
func TestReplayInvisible(t *testing.T) {
	c := testenv.NewCHDB(t)
	now := time.Now()
	ds := seed(t, c, 2, now)
	checks := []struct {
		q    string
		want int64
	}{
		{"SELECT count() FROM tokenwatch.token_events FINAL", int64(ds.Uses)},
		{"SELECT count() FROM tokenwatch.findings FINAL", int64(ds.Leaks)},
		{"SELECT count() FROM tokenwatch.revocations FINAL", int64(ds.Revocations)},
		{"SELECT count() FROM tokenwatch.deliveries FINAL", int64(len(ds.Deliveries))},
		{"SELECT uniqExact(row_id) FROM tokenwatch.token_events", int64(ds.Uses)},
		{"SELECT toInt64(uniqMerge(uses)) FROM tokenwatch.uses_minutely", int64(ds.Uses)},
		{"SELECT toInt64(uniqMerge(leaks)) FROM tokenwatch.leaks_hourly", int64(ds.Leaks)},
	}
	for _, ck := range checks {
		if got := queryInt(t, c, ck.q); got != ck.want {
			t.Errorf("%s = %d, want %d", ck.q, got, ck.want)
		}
	}
	// A third copy as a replay of records without their own timestamp sees
	// it: the parser stamps them with the ingest time, which differs.
	again := storetest.Generate(now)
	for i := range again.Batches {
		for j := range again.Batches[i].Uses {
			again.Batches[i].Uses[j].Time = again.Batches[i].Uses[j].Time.Add(time.Millisecond)
		}
	}
	rows, err := again.Rows()
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := rows.InsertStatements("tokenwatch")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if err := c.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"SELECT count() FROM tokenwatch.token_events FINAL", "SELECT count() FROM tokenwatch.findings FINAL"} {
		want := int64(ds.Uses)
		if strings.Contains(q, "findings") {
			want = int64(ds.Leaks)
		}
		if got := queryInt(t, c, q); got != want {
			t.Errorf("after a replay with shifted event times, %s = %d, want %d", q, got, want)
		}
	}
	// Raw rows are tripled until merged: the test really inserted three times.
	if got := queryInt(t, c, "SELECT count() FROM tokenwatch.token_events"); got != 3*int64(ds.Uses) {
		t.Errorf("raw token_events rows = %d, want %d (three copies)", got, 3*ds.Uses)
	}
	// Alerts: re-raises (update 1) fold with their first raise in alerts_latest.
	ids := queryInt(t, c, "SELECT uniqExact(id) FROM tokenwatch.alerts")
	if got := queryInt(t, c, "SELECT count() FROM tokenwatch.alerts_latest"); got != ids {
		t.Errorf("alerts_latest has %d rows, want one per id (%d)", got, ids)
	}
	if got := queryInt(t, c, "SELECT countIf(update_count = 1 AND evidence_count = 2) FROM tokenwatch.alerts_latest"); got != 5 {
		t.Errorf("alerts_latest shows %d re-raised alerts with grown evidence, want 5", got)
	}
	if got := queryInt(t, c, "SELECT count() FROM tokenwatch.alerts FINAL"); got != ids {
		t.Errorf("alerts FINAL = %d, want %d", got, ids)
	}
	// Closing an alert is an insert with a larger version.
	if err := c.Exec(`INSERT INTO tokenwatch.alerts (id, version, type, severity, status, event_time, detected_at)
		SELECT id, latest_version + 1, type, severity, 'closed', event_time, detected_at FROM tokenwatch.alerts_latest WHERE type = 'impossible_travel'`); err != nil {
		t.Fatal(err)
	}
	if got := queryInt(t, c, "SELECT count() FROM tokenwatch.alerts_latest WHERE type = 'impossible_travel' AND status = 'closed'"); got != 1 {
		t.Errorf("closed impossible_travel alerts = %d, want 1", got)
	}
}

// TestClusterDDLRunsWithoutKeeper executes the cluster variant on chDB after
// the only changes a single process forces: no ON CLUSTER (no cluster is
// defined), Replicated*MergeTree as the plain engine (no Keeper), and a Merge
// table in place of each Distributed table. It proves the cluster variant's
// wiring: materialized views read the local tables and fill the local
// aggregate tables, and the names the writer and the dashboards use (the
// Distributed names) see every row.
func TestClusterDDLRunsWithoutKeeper(t *testing.T) {
	c := testenv.NewCHDB(t)
	cfg := store.DefaultConfig()
	cfg.Cluster = "tw_cluster"
	script, err := store.Script(cfg)
	if err != nil {
		t.Fatal(err)
	}
	replicated := regexp.MustCompile(`Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, ([^)]*))?\)`)
	distributed := regexp.MustCompile(`ENGINE = Distributed\(tw_cluster, (\w+), (\w+), .*\)$`)
	n := 0
	for _, s := range strings.Split(script, ";\n") {
		s = strings.TrimSpace(stripLineComments(s))
		if s == "" {
			continue
		}
		s = strings.ReplaceAll(s, " ON CLUSTER tw_cluster", "")
		s = replicated.ReplaceAllStringFunc(s, func(m string) string {
			sm := replicated.FindStringSubmatch(m)
			if sm[2] == "" {
				return sm[1]
			}
			return sm[1] + "(" + sm[2] + ")"
		})
		s = distributed.ReplaceAllString(s, "ENGINE = Merge($1, '^$2$$')")
		if err := c.Exec(s); err != nil {
			t.Fatalf("cluster statement: %v\n%s", err, s)
		}
		n++
	}
	ds := storetest.Generate(time.Now())
	rows, err := ds.Rows()
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := rows.InsertStatements(cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	localInsert := regexp.MustCompile(`^INSERT INTO tokenwatch\.(\w+) `)
	for _, s := range stmts {
		if err := c.Exec(localInsert.ReplaceAllString(s, "INSERT INTO tokenwatch.${1}_local ")); err != nil {
			t.Fatal(err)
		}
	}
	for q, want := range map[string]int64{
		"SELECT count() FROM tokenwatch.token_events":                       int64(ds.Uses),
		"SELECT count() FROM tokenwatch.findings":                           int64(ds.Leaks),
		"SELECT toInt64(uniqMerge(uses)) FROM tokenwatch.uses_minutely":     int64(ds.Uses),
		"SELECT toInt64(uniqMerge(leaks)) FROM tokenwatch.leaks_hourly":     int64(ds.Leaks),
		"SELECT count() FROM tokenwatch.alerts_latest":                      int64(ds.Alerts - 5),
		"SELECT toInt64(uniqMerge(alerts)) FROM tokenwatch.alerts_minutely": int64(ds.Alerts - 5),
	} {
		if got := queryInt(t, c, q); got != want {
			t.Errorf("cluster variant: %s = %d, want %d", q, got, want)
		}
	}
	t.Logf("%d cluster statements executed", n)
}
