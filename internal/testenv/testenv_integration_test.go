//go:build integration

package testenv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

func TestCreateTopicHasLeaders(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.CreateTopic(t, "testenv/leaders "+t.Name(), 4)

	conn, err := kafka.Dial("tcp", brokers[0])
	if err != nil {
		t.Fatalf("dial %s: %v", brokers[0], err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("read partitions of %s: %v", topic, err)
	}
	if len(parts) != 4 {
		t.Fatalf("topic %s has %d partitions, want 4", topic, len(parts))
	}
	for _, p := range parts {
		if p.Leader.Host == "" {
			t.Errorf("partition %d has no leader", p.ID)
		}
	}
	if other := testenv.CreateTopic(t, "testenv/leaders "+t.Name(), 1); other == topic {
		t.Errorf("CreateTopic returned %s twice", topic)
	}
}

func TestKafkaProduceConsume(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	const partitions, n = 3, 300
	topic := testenv.CreateTopic(t, "testenv-produce", partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte("k" + strconv.Itoa(i%17)), Value: []byte("v" + strconv.Itoa(i))}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write %d messages to %s: %v", n, topic, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}

	// A consumer group reads them all back: this also exercises JoinGroup/SyncGroup
	// and offset commits against Kafka 4.x.
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        brokers,
		GroupID:        "testenv-" + topic,
		Topic:          topic,
		StartOffset:    kafka.FirstOffset,
		MinBytes:       1,
		MaxBytes:       1 << 20,
		MaxWait:        100 * time.Millisecond,
		CommitInterval: 0,
	})
	defer r.Close()
	seen := map[string]bool{}
	perPartition := map[int]int{}
	for len(seen) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch after %d of %d messages: %v", len(seen), n, err)
		}
		if seen[string(m.Value)] {
			t.Fatalf("message %s delivered twice", m.Value)
		}
		seen[string(m.Value)] = true
		perPartition[m.Partition]++
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit offset %d/%d: %v", m.Partition, m.Offset, err)
		}
	}
	for i := 0; i < n; i++ {
		if !seen["v"+strconv.Itoa(i)] {
			t.Errorf("message v%d not consumed", i)
		}
	}
	if len(perPartition) != partitions {
		t.Errorf("messages landed in %d partitions (%v), want %d", len(perPartition), perPartition, partitions)
	}
}

func openClickHouse(t *testing.T) clickhouse.Conn {
	t.Helper()
	addr := testenv.ClickHouseAddr(t)
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Protocol:    clickhouse.Native,
		Auth:        clickhouse.Auth{Database: "default", Username: "default"},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("open clickhouse %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestClickHouseNativeInsertSelect(t *testing.T) {
	conn := openClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	v, err := conn.ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	t.Logf("clickhouse-server %s over the native protocol", v)

	table := fmt.Sprintf("testenv_%d", time.Now().UnixNano())
	if err := conn.Exec(ctx, "CREATE TABLE "+table+" (day Date, ts DateTime, id UInt64, name String, n Int32) ENGINE = MergeTree() PARTITION BY day ORDER BY (day, id)"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })

	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (day, ts, id, name, n)")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	base := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	const rows = 1000
	for i := 0; i < rows; i++ {
		ts := base.Add(time.Duration(i) * time.Second)
		if err := batch.Append(ts, ts, uint64(i), "name-"+strconv.Itoa(i), int32(i%7)); err != nil {
			t.Fatalf("append row %d: %v", i, err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send batch: %v", err)
	}

	var (
		count uint64
		sumN  int64
		last  string
	)
	if err := conn.QueryRow(ctx, "SELECT count(), sum(n), max(name) FROM "+table).Scan(&count, &sumN, &last); err != nil {
		t.Fatalf("select: %v", err)
	}
	var wantSum int64
	for i := 0; i < rows; i++ {
		wantSum += int64(i % 7)
	}
	if count != rows || sumN != wantSum || last != "name-999" {
		t.Errorf("count, sum, max = %d, %d, %q; want %d, %d, %q", count, sumN, last, rows, wantSum, "name-999")
	}

	rs, err := conn.Query(ctx, "SELECT id, name, ts FROM "+table+" WHERE id IN (0, 500) ORDER BY id")
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer rs.Close()
	var got []string
	for rs.Next() {
		var (
			id   uint64
			name string
			ts   time.Time
		)
		if err := rs.Scan(&id, &name, &ts); err != nil {
			t.Fatalf("scan: %v", err)
		}
		got = append(got, fmt.Sprintf("%d %s %s", id, name, ts.UTC().Format(time.RFC3339)))
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("rows: %v", err)
	}
	want := []string{"0 name-0 2026-11-25T08:00:00Z", "500 name-500 2026-11-25T08:08:20Z"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows = %q, want %q", got, want)
	}
}

func TestClickHouseRestartKeepsData(t *testing.T) {
	conn := openClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	table := fmt.Sprintf("testenv_restart_%d", time.Now().UnixNano())
	if err := conn.Exec(ctx, "CREATE TABLE "+table+" (id UInt64) ENGINE = MergeTree() ORDER BY id"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })
	// Not `INSERT ... VALUES` through Exec: 18.16 then waits for a data block that
	// clickhouse-go never sends (see docs/development.md). INSERT SELECT runs server-side.
	if err := conn.Exec(ctx, "INSERT INTO "+table+" (id) SELECT number + 1 FROM system.numbers LIMIT 3"); err != nil {
		t.Fatalf("insert: %v", err)
	}

	testenv.StopClickHouse(t)
	if err := conn.Ping(ctx); err == nil {
		t.Fatalf("ping succeeded while clickhouse-server is stopped")
	}
	if _, err := net.DialTimeout("tcp", testenv.ClickHouseAddr(t), time.Second); err == nil {
		t.Fatalf("native port still accepts connections after StopClickHouse")
	}
	testenv.StartClickHouse(t)
	testenv.RestartClickHouse(t)

	// The pool's connections died with the server; clickhouse-go redials on the next use.
	var count uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&count)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("select after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if count != 3 {
		t.Errorf("count after restart = %d, want 3", count)
	}
}

func TestCHDBMergeTreeAndMaterializedView(t *testing.T) {
	db := testenv.NewCHDB(t)
	err := db.Exec(`
		CREATE TABLE events (ts DateTime64(3, 'UTC'), fp FixedString(4), service LowCardinality(String), n UInt64)
			ENGINE = MergeTree ORDER BY (fp, ts);
		CREATE TABLE per_service (service LowCardinality(String), uses UInt64, total UInt64)
			ENGINE = SummingMergeTree ORDER BY service;
		CREATE MATERIALIZED VIEW per_service_mv TO per_service AS
			SELECT service, count() AS uses, sum(n) AS total FROM events GROUP BY service;
		INSERT INTO events VALUES
			('2026-11-25 08:00:00.001', 'aaaa', 'api', 18446744073709551615),
			('2026-11-25 08:00:01.002', 'bbbb', 'api', 0),
			('2026-11-25 08:00:02.003', 'aaaa', 'web', 5);
		INSERT INTO events VALUES ('2026-11-25 08:00:03.004', 'cccc', 'web', 7)`)
	if err != nil {
		t.Fatalf("exec: %v", err)
	}

	rows, cols, err := db.Query("SELECT service, sum(uses) AS uses, sum(total) AS total FROM per_service GROUP BY service ORDER BY service")
	if err != nil {
		t.Fatalf("query view target: %v", err)
	}
	if fmt.Sprint(cols) != "[service uses total]" {
		t.Errorf("columns = %v, want [service uses total]", cols)
	}
	got := make([]string, 0, len(rows))
	for _, r := range rows {
		got = append(got, fmt.Sprint(r["service"], " ", r["uses"], " ", r["total"]))
	}
	// UInt64 max survives the JSON round trip exactly (json.Number).
	want := []string{"api 2 18446744073709551615", "web 2 12"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("per_service = %q, want %q", got, want)
	}
	if _, ok := rows[0]["uses"].(json.Number); !ok {
		t.Errorf("uses decoded as %T, want json.Number", rows[0]["uses"])
	}

	rows, _, err = db.Query("SELECT fp, groupArray(toString(ts)) AS seen, [1, 2] AS arr, map('k', 1) AS m, NULL AS nothing FROM events GROUP BY fp ORDER BY fp")
	if err != nil {
		t.Fatalf("query events: %v", err)
	}
	if len(rows) != 3 {
		t.Fatalf("got %d fingerprints, want 3: %v", len(rows), rows)
	}
	seen, _ := rows[0]["seen"].([]any)
	var ts []string
	for _, s := range seen {
		ts = append(ts, fmt.Sprint(s))
	}
	sort.Strings(ts)
	if rows[0]["fp"] != "aaaa" || fmt.Sprint(ts) != "[2026-11-25 08:00:00.001 2026-11-25 08:00:02.003]" {
		t.Errorf("first row = %v", rows[0])
	}
	if m, ok := rows[0]["m"].(map[string]any); !ok || fmt.Sprint(m["k"]) != "1" {
		t.Errorf("map column = %#v, want map[k:1]", rows[0]["m"])
	}
	if rows[0]["nothing"] != nil {
		t.Errorf("NULL decoded as %#v, want nil", rows[0]["nothing"])
	}
}

func TestCHDBErrorsAndIsolation(t *testing.T) {
	a := testenv.NewCHDB(t)
	if err := a.Exec("CREATE TABLE only_in_a (x UInt8) ENGINE = Memory"); err != nil {
		t.Fatalf("create: %v", err)
	}
	_, _, err := a.Query("SELECT no_such_column FROM only_in_a")
	if err == nil {
		t.Fatalf("query of a missing column succeeded")
	}
	if !containsAll(err.Error(), "UNKNOWN_IDENTIFIER", "no_such_column") {
		t.Errorf("error %q does not name the problem", err)
	}
	if err := a.Exec("CREATE TABLE broken ("); err == nil {
		t.Errorf("exec of a syntax error succeeded")
	}
	// The session survives errors.
	rows, _, err := a.Query("SELECT count() AS c FROM only_in_a")
	if err != nil || len(rows) != 1 || fmt.Sprint(rows[0]["c"]) != "0" {
		t.Fatalf("query after errors = %v, %v", rows, err)
	}

	b := testenv.NewCHDB(t)
	if _, _, err := b.Query("SELECT * FROM only_in_a"); err == nil {
		t.Errorf("second session sees the first session's table")
	}
	rows, cols, err := b.Query("SELECT 1 AS x WHERE 0")
	if err != nil || len(rows) != 0 || fmt.Sprint(cols) != "[x]" {
		t.Errorf("empty result = %v, %v, %v; want no rows, columns [x]", rows, cols, err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
