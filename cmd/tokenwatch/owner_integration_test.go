//go:build integration

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/enrich/geotest"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
	"github.com/tokenwatch/tokenwatch/store"
)

// twProc is a tokenwatch subprocess whose output goes to a log file.
type twProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startTW(t *testing.T, bin, name string, args ...string) *twProc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &twProc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
		}
		<-p.done
		if t.Failed() {
			t.Logf("--- %s log:\n%s", p.name, p.logText())
		}
	})
	return p
}

func (p *twProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *twProc) logText() string { b, _ := os.ReadFile(p.log); return string(b) }

// waitLog waits until the log holds at least n lines containing every one of subs.
func (p *twProc) waitLog(t *testing.T, timeout time.Duration, n int, subs ...string) {
	t.Helper()
	pollUntil(t, fmt.Sprintf("%s to log %q (x%d)", p.name, subs, n), timeout, func() bool {
		if p.exited() {
			t.Fatalf("%s exited: %v", p.name, p.err)
		}
		c := 0
		for _, l := range strings.Split(p.logText(), "\n") {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(l, s)
			}
			if all {
				c++
			}
		}
		return c >= n
	})
}

// stop sends SIGTERM and expects exit status 0 within a minute.
func (p *twProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("%s did not stop within a minute of SIGTERM", p.name)
	}
	if p.err != nil {
		t.Fatalf("%s after SIGTERM: %v", p.name, p.err)
	}
}

func pollUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nginxJSONLine is an nginx JSON access-log line of a request with a bearer token.
func nginxJSONLine(at time.Time, ip, token string) string {
	return fmt.Sprintf(`{"time_iso8601":"%s","remote_addr":"%s","http_x_forwarded_for":"-","request_method":"GET","request_uri":"/api/v1/orders","server_protocol":"HTTP/1.1","status":"200","body_bytes_sent":"512","request_time":"0.012","http_user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0","http_authorization":"Bearer %s","host":"api.example.com","service":"api-gateway"}`,
		at.Format(time.RFC3339), ip, token)
}

func produceOne(t *testing.T, brokers []string, topic, line string) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := w.WriteMessages(ctx, kafka.Message{Value: []byte(line)})
		if err == nil {
			return
		}
		if !errors.Is(err, kafka.UnknownTopicOrPartition) || attempt == 200 { // 20 s: past the writer's 6 s metadata refresh
			t.Fatalf("produce to %s: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// outboxAlerts reads a file outbox: the alerts raised for jti.
func outboxAlerts(t *testing.T, path, jti string) []tokenwatch.Alert {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []tokenwatch.Alert
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[len(line)-1] != '}' {
			continue // a line still being written
		}
		e, err := decodeAlertLine(line)
		if err != nil {
			t.Fatalf("outbox %s: %v", path, err)
		}
		if e.Alert.JTI == jti {
			out = append(out, e.Alert)
		}
	}
	return out
}

// ownerTestStore creates a database with the tables of store/testdata/clickhouse18
// on the test clickhouse-server and returns its clickhouse: config section and
// a counter of rows; it returns "" and nil when TOKENWATCH_TEST_CLICKHOUSE is
// unset, and the test then runs without a store.
func ownerTestStore(t *testing.T) (yaml string, count func(q string) (uint64, error)) {
	t.Helper()
	if os.Getenv("TOKENWATCH_TEST_CLICKHOUSE") == "" {
		return "", nil
	}
	cfg := store.DefaultConfig()
	cfg.Addr = []string{testenv.ClickHouseAddr(t)}
	cfg.Database = fmt.Sprintf("tw_owner_%d", time.Now().UnixNano()%1e9)
	conn, err := store.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		conn.Close()
	})
	ddl, err := os.ReadFile("../../store/testdata/clickhouse18/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range strings.Split(strings.ReplaceAll(string(ddl), "{{db}}", cfg.Database), ";\n") {
		var lines []string
		for _, l := range strings.Split(stmt, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				lines = append(lines, l)
			}
		}
		if stmt = strings.TrimSpace(strings.Join(lines, "\n")); stmt != "" {
			if err := conn.Exec(context.Background(), stmt); err != nil {
				t.Fatalf("schema: %v", err)
			}
		}
	}
	yaml = fmt.Sprintf("clickhouse:\n  addr: [%q]\n  database: %s\n  migrate: false\n", cfg.Addr[0], cfg.Database)
	return yaml, func(q string) (uint64, error) {
		var n uint64
		err := conn.QueryRow(context.Background(), strings.ReplaceAll(q, "DB.", cfg.Database+".")).Scan(&n)
		return n, err
	}
}

// TestOwnerScaleOut runs the Kafka scale-out from the command line: one
// `tokenwatch run` (stage one, Kafka source, repartitioner) and two
// `tokenwatch owner` processes, each with its own file outbox. The first use
// of an impossible-travel incident (London) is processed by owner A while it
// owns every partition; owner B joins; A is stopped (SIGKILL, or SIGTERM: a
// graceful leave); once B owns all four partitions, with the token's state
// rebuilt from the changelog, the second use (Sydney, 25 minutes later)
// arrives, and B must raise impossible_travel with both uses as evidence.
// With TOKENWATCH_TEST_CLICKHOUSE set, every process also has the store: the
// alert reaches ClickHouse from B, and the token events are there once, from
// stage one.
func TestOwnerScaleOut(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteCity(city, geotest.GeoLite2, geotest.World); err != nil {
		t.Fatal(err)
	}
	if err := geotest.WriteASN(asn, geotest.GeoLite2, geotest.World); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{
		{"kill -9", syscall.SIGKILL},
		{"SIGTERM", syscall.SIGTERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			in := testenv.CreateTopic(t, "tw-so-in", 2)
			uses := testenv.CreateTopic(t, "tw-so-uses", 4)
			changelog := testenv.CreateTopic(t, "tw-so-state", 4)
			chYAML, count := ownerTestStore(t)
			cfg := writeConfig(t, chYAML+fmt.Sprintf(`ingest:
  kafka:
    brokers: [%[1]q]
    group_id: stage-one-%[2]s
    topics: [{name: %[2]s, kind: auth}]
    batch_size: 50
    flush_interval: 20ms
    session_timeout: 6s
    heartbeat_interval: 500ms
enrich:
  city_db: %[3]q
  asn_db: %[4]q
anomaly:
  scale_out:
    brokers: [%[1]q]
    uses_topic: %[5]s
    changelog_topic: %[6]s
    group_id: owners-%[5]s
    batch_wait: 20ms
`, brokers[0], in, city, asn, uses, changelog))

			one := startTW(t, bin, "stage-one", "run", "--config", cfg)
			one.waitLog(t, time.Minute, 1, "tokenwatch run: started", "repartition")
			for _, line := range strings.Split(one.logText(), "\n") {
				if strings.Contains(line, "tokenwatch run: started") {
					for _, stage := range []string{"anomaly", "policy", "alerts"} {
						if strings.Contains(line, stage) {
							t.Fatalf("stage one still has the %s stage: %s", stage, line)
						}
					}
				}
			}
			outA, outB := filepath.Join(t.TempDir(), "owner-a.jsonl"), filepath.Join(t.TempDir(), "owner-b.jsonl")
			a := startTW(t, bin, "owner-a", "owner", "--config", cfg, "--alerts-file", outA)
			a.waitLog(t, time.Minute, 1, "anomaly owner: partitions assigned", "partitions=4")

			// The incident: one JWT, London then Sydney 25 minutes later.
			jti := "so-travel-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			tok := fakeJWT(jti)
			t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
			produceOne(t, brokers, in, nginxJSONLine(t0, "81.2.69.10", tok))
			pollUntil(t, "owner A to write the first use's state to the changelog", time.Minute, func() bool {
				var n int64
				for _, e := range endOffsets(t, brokers, changelog) {
					n += e
				}
				return n > 0
			})
			if got := outboxAlerts(t, outA, jti); len(got) != 0 {
				t.Fatalf("%d alerts after the first use alone: %+v", len(got), got)
			}

			b := startTW(t, bin, "owner-b", "owner", "--config", cfg, "--alerts-file", outB)
			b.waitLog(t, time.Minute, 1, "anomaly owner: partitions assigned")
			stopped := time.Now()
			_ = a.cmd.Process.Signal(tc.sig)
			<-a.done
			if tc.sig == syscall.SIGTERM && a.err != nil {
				t.Fatalf("owner A after SIGTERM: %v", a.err)
			}
			t.Logf("owner A gone %s after %s", time.Since(stopped).Round(time.Millisecond), tc.name)
			// B's generation after A left (or its session timed out) holds all four,
			// and B read the token's state from the changelog (only the token's
			// partition has records, and an empty partition logs no rebuild).
			b.waitLog(t, time.Minute, 1, "anomaly owner: partitions assigned", "partitions=4")
			b.waitLog(t, time.Minute, 1, "anomaly owner: state rebuilt from changelog", "records=1 ")
			t.Logf("owner B owns every partition %s after owner A was stopped", time.Since(stopped).Round(time.Millisecond))

			sent := time.Now()
			produceOne(t, brokers, in, nginxJSONLine(t0.Add(25*time.Minute), "1.128.0.10", tok))
			var travel *tokenwatch.Alert
			pollUntil(t, "owner B to raise impossible_travel", time.Minute, func() bool {
				for _, al := range outboxAlerts(t, outB, jti) {
					if al.Type == "impossible_travel" {
						travel = &al
						return true
					}
				}
				return false
			})
			t.Logf("impossible_travel in owner B's outbox %s after the second use was produced", time.Since(sent).Round(time.Millisecond))
			var ips []string
			for _, e := range travel.Evidence {
				ips = append(ips, e.IP)
			}
			if len(ips) != 2 || ips[0] != "81.2.69.10" || ips[1] != "1.128.0.10" || travel.Evidence[0].Topic != in {
				t.Errorf("impossible_travel evidence IPs %v (first from topic %q); want the London use from %s, then Sydney",
					ips, travel.Evidence[0].Topic, in)
			}
			if got := outboxAlerts(t, outA, jti); len(got) != 0 {
				t.Errorf("owner A wrote %d alerts for the incident; want none", len(got))
			}

			if count != nil {
				// The owners store alerts only; the token events are stage one's.
				pollUntil(t, "the impossible_travel alert in ClickHouse", time.Minute, func() bool {
					n, err := count("SELECT count() FROM DB.alerts WHERE type = 'impossible_travel' AND jti = '" + jti + "'")
					return err == nil && n > 0
				})
				// Stage one stores after it repartitions: the owner's alert may be
				// in ClickHouse before the second use's row.
				pollUntil(t, "stage one to store both uses", time.Minute, func() bool {
					n, err := count("SELECT count() FROM DB.token_events")
					return err == nil && n >= 2
				})
				if n, err := count("SELECT count() FROM DB.token_events"); err != nil || n != 2 {
					t.Errorf("token_events rows = %d (%v), want 2: one per use, written by stage one only", n, err)
				}
			}

			b.stop(t)
			one.stop(t)
			t.Logf("subtest %s", time.Since(began).Round(time.Millisecond))
		})
	}
}
