//go:build integration

package e2e

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/bench/scenario"
	"github.com/tokenwatch/tokenwatch/internal/kafkalog"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
	"github.com/tokenwatch/tokenwatch/store"
)

// tmpRoot holds the binary and the generated scenario for the whole test run.
var tmpRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokenwatch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	tmpRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// tokenwatchBin builds cmd/tokenwatch once per test run.
func tokenwatchBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binPath = filepath.Join(tmpRoot, "tokenwatch")
		cmd := exec.Command("go", "build", "-o", binPath, "../cmd/tokenwatch")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// ---- scenario traffic ----

// traffic is a generated scenario as the records Kafka topics carry: every
// line of the scenario's files in event-time order (scenario.ReplaySource),
// each with the file it came from.
type traffic struct {
	dir   string
	cfg   scenario.Config
	truth *scenario.Truth
	recs  []trafficRecord
}

type trafficRecord struct {
	file string // scenario file base name: which topic it goes to
	raw  []byte
}

var (
	scenOnce sync.Once
	scen     *traffic
	scenErr  error
)

// scenarioTraffic generates the shared scenario once per test run (60
// background users: about 23,000 records, 8.5 MB, 48 incidents, 27 posture
// cases).
func scenarioTraffic(t *testing.T) *traffic {
	t.Helper()
	scenOnce.Do(func() {
		tr := &traffic{dir: filepath.Join(tmpRoot, "scenario"), cfg: scenario.DefaultConfig()}
		tr.cfg.Users = 60
		if tr.truth, scenErr = scenario.Generate(tr.dir, tr.cfg); scenErr != nil {
			return
		}
		src, err := scenario.OpenReplay(tr.dir, 4096)
		if err != nil {
			scenErr = err
			return
		}
		defer src.Close()
		var b tokenwatch.Batch
		for {
			b.Reset()
			if err := src.Next(context.Background(), &b); err == io.EOF {
				break
			} else if err != nil {
				scenErr = err
				return
			}
			for _, r := range b.Records {
				tr.recs = append(tr.recs, trafficRecord{file: filepath.Base(r.Origin.Source), raw: r.Raw})
			}
		}
		scen = tr
	})
	if scenErr != nil {
		t.Fatal(scenErr)
	}
	return scen
}

// topicSet is one Kafka topic per scenario file, with the kind tokenwatch
// must read it as.
type topicSet struct {
	names map[string]string // scenario file -> topic
	parts map[string]int    // topic -> partitions
	kinds map[string]string // topic -> kind
}

// createScenarioTopics creates the four topics of a scenario (3 partitions
// for the logs, 1 for the revocation events).
func createScenarioTopics(t *testing.T, prefix string) *topicSet {
	t.Helper()
	ts := &topicSet{names: map[string]string{}, parts: map[string]int{}, kinds: map[string]string{}}
	for _, f := range []struct {
		file, kind string
		parts      int
	}{
		{scenario.FileNginx, "auth", 3}, {scenario.FileEnvoy, "auth", 3},
		{scenario.FileApp, "app", 3}, {scenario.FileRevocations, "revocation", 1},
	} {
		name := testenv.CreateTopic(t, prefix+"-"+strings.TrimSuffix(strings.TrimSuffix(f.file, ".log"), ".jsonl"), f.parts)
		ts.names[f.file], ts.parts[name], ts.kinds[name] = name, f.parts, f.kind
	}
	return ts
}

// yaml lists the topics as ingest.kafka.topics entries.
func (ts *topicSet) yaml() string {
	var parts []string
	for name, kind := range ts.kinds {
		parts = append(parts, fmt.Sprintf("{name: %s, kind: %s}", name, kind))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// produce writes recs[from:to] to their topics with acks=all. The key is the
// record's index in the scenario, so a record lands on the same partition
// number whichever topic set it is produced to.
func produce(t *testing.T, ts *topicSet, recs []trafficRecord, from, to int) {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	writers := map[string]*kafka.Writer{}
	msgs := map[string][]kafka.Message{}
	for file, topic := range ts.names {
		writers[file] = &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{},
			BatchSize: 1000, BatchBytes: 16 << 20, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	}
	defer func() {
		for _, w := range writers {
			w.Close()
		}
	}()
	for i := from; i < to; i++ {
		r := recs[i]
		msgs[r.file] = append(msgs[r.file], kafka.Message{Key: []byte(strconv.Itoa(i)), Value: r.raw})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for file, m := range msgs {
		writeMessages(ctx, t, writers[file], m)
	}
}

func writeMessages(ctx context.Context, t *testing.T, w *kafka.Writer, msgs []kafka.Message) {
	t.Helper()
	for len(msgs) > 0 {
		n := min(len(msgs), 2000)
		for attempt := 0; ; attempt++ {
			err := w.WriteMessages(ctx, msgs[:n]...)
			if err == nil {
				break
			}
			// A new topic's leader, or a topic config just raised
			// (max.message.bytes), may take a moment to be in effect; the
			// writer's transport learns of a new topic only when its cached
			// metadata is refreshed (every 6 s by default).
			retry := errors.Is(err, kafka.UnknownTopicOrPartition) || errors.Is(err, kafka.MessageSizeTooLarge)
			if !retry || attempt == 200 {
				t.Fatalf("produce to %s: %v", w.Topic, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		msgs = msgs[n:]
	}
}

// ---- Kafka offsets ----

// offsets returns, per topic and partition, the group's committed offset
// (-1 when none) and the partition's end offset.
func offsets(t *testing.T, group string, parts map[string]int) (committed, end map[string]map[int]int64) {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	lreq := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for topic, n := range parts {
		for p := range n {
			req.Topics[topic] = append(req.Topics[topic], p)
			lreq.Topics[topic] = append(lreq.Topics[topic], kafka.LastOffsetOf(p))
		}
	}
	committed, end = map[string]map[int]int64{}, map[string]map[int]int64{}
	resp, err := c.OffsetFetch(ctx, req)
	if err != nil {
		t.Fatalf("offset fetch of group %s: %v", group, err)
	}
	for topic, ps := range resp.Topics {
		committed[topic] = map[int]int64{}
		for _, p := range ps {
			committed[topic][p.Partition] = p.CommittedOffset
		}
	}
	lresp, err := c.ListOffsets(ctx, lreq)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	for topic, ps := range lresp.Topics {
		end[topic] = map[int]int64{}
		for _, p := range ps {
			if p.Error != nil {
				t.Fatalf("list offsets %s/%d: %v", topic, p.Partition, p.Error)
			}
			end[topic][p.Partition] = p.LastOffset
		}
	}
	return committed, end
}

// lag is the sum over partitions of end - committed (end when nothing is committed).
func lag(t *testing.T, group string, parts map[string]int) int64 {
	t.Helper()
	committed, end := offsets(t, group, parts)
	var n int64
	for topic, ps := range end {
		for p, e := range ps {
			c := committed[topic][p]
			if c < 0 {
				c = 0
			}
			n += e - c
		}
	}
	return n
}

// waitFor polls cond every 200 ms until it is true or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if diag != nil {
				msg = diag()
			}
			t.Fatalf("timed out after %s waiting for %s\n%s", timeout, what, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ---- ClickHouse 18.16 ----

// chDB creates a fresh database with the store's 18.16 schema
// (store/testdata/clickhouse18/schema.sql: the writer's tables with the types
// 18.16 has; tokenwatch runs with clickhouse.migrate: false on it, because the
// real migrations need a current server — they are tested on chDB by the
// store package).
type chDB struct {
	addr, name string
	conn       driver.Conn
}

func newCHDB(t *testing.T, prefix string) *chDB {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.Addr = []string{testenv.ClickHouseAddr(t)}
	cfg.Database = fmt.Sprintf("e2e_%s_%d_%d", prefix, time.Now().UnixNano()%1e9, rand.IntN(1000))
	conn, err := store.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := &chDB{addr: cfg.Addr[0], name: cfg.Database, conn: conn}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db.name)
		_ = conn.Close()
	})
	src, err := os.ReadFile("../store/testdata/clickhouse18/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, s := range strings.Split(strings.ReplaceAll(string(src), "{{db}}", db.name), ";\n") {
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				lines = append(lines, l)
			}
		}
		if s = strings.TrimSpace(strings.Join(lines, "\n")); s != "" {
			if err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("18.16 schema: %v\n%s", err, s)
			}
		}
	}
	return db
}

// yaml is the clickhouse: section for this database.
func (db *chDB) yaml() string {
	return fmt.Sprintf("clickhouse:\n  addr: [%q]\n  database: %s\n  migrate: false\n  retry_max: 2s\n  dial_timeout: 2s\n  write_timeout: 10s\n", db.addr, db.name)
}

func (db *chDB) count(t *testing.T, q string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n uint64
	if err := db.conn.QueryRow(ctx, strings.ReplaceAll(q, "DB.", db.name+".")).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// tryCount is count without failing the test (ClickHouse may be down).
func (db *chDB) tryCount(q string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n uint64
	err := db.conn.QueryRow(ctx, strings.ReplaceAll(q, "DB.", db.name+".")).Scan(&n)
	return n, err
}

// rowTables are the tables with a deterministic row_id (docs/store.md).
var rowTables = []string{"token_events", "findings", "revocations"}

// tableStats is what a user sees of one run's tables, deduplicated the way
// docs/store.md says dashboards count (FINAL, uniqExact of the row id).
type tableStats struct {
	final, uniq, raw map[string]uint64 // per table
	alertIDs         uint64            // uniqExact(id) of alerts
}

func (db *chDB) stats(t *testing.T) tableStats {
	t.Helper()
	s := tableStats{final: map[string]uint64{}, uniq: map[string]uint64{}, raw: map[string]uint64{}}
	for _, tb := range rowTables {
		s.final[tb] = db.count(t, "SELECT count() FROM DB."+tb+" FINAL")
		s.uniq[tb] = db.count(t, "SELECT uniqExact(row_id) FROM DB."+tb)
		s.raw[tb] = db.count(t, "SELECT count() FROM DB."+tb)
	}
	s.final["alerts"] = db.count(t, "SELECT count() FROM DB.alerts FINAL")
	s.alertIDs = db.count(t, "SELECT uniqExact(id) FROM DB.alerts")
	s.raw["alerts"] = db.count(t, "SELECT count() FROM DB.alerts")
	return s
}

func (s tableStats) String() string {
	var b strings.Builder
	for _, tb := range rowTables {
		fmt.Fprintf(&b, "%s: %d rows FINAL, %d stored (uniqExact row_id %d); ", tb, s.final[tb], s.raw[tb], s.uniq[tb])
	}
	fmt.Fprintf(&b, "alerts: %d rows FINAL, %d stored (uniqExact id %d)", s.final["alerts"], s.raw["alerts"], s.alertIDs)
	return b.String()
}

// rowIDs returns the row ids of a table (the exact set a user sees after dedup).
func (db *chDB) rowIDs(t *testing.T, table string) map[uint64]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := db.conn.Query(ctx, "SELECT DISTINCT row_id FROM "+db.name+"."+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[uint64]bool{}
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	return ids
}

// ---- the tokenwatch process ----

type proc struct {
	logPath  string
	logStart int64 // size of the log when this process started
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
}

// startRun starts `tokenwatch run --config cfgPath`, appending its stdout and
// stderr to logPath.
func startRun(t *testing.T, cfgPath, logPath string) *proc {
	t.Helper()
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	st, err := log.Stat()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tokenwatchBin(t), "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), logPath: logPath, logStart: st.Size()}
	go func() { p.err = cmd.Wait(); log.Close(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// stop sends SIGTERM and expects a clean exit (status 0) within a minute.
func (p *proc) stop(t *testing.T, logPath string) {
	t.Helper()
	// A signal that arrives before the process installed its handler kills
	// it like any program; wait until it says it started.
	waitFor(t, "tokenwatch to start", time.Minute, func() bool {
		if p.exited() {
			t.Fatalf("tokenwatch exited early: %v\n%s", p.err, tail(logPath))
		}
		b, _ := os.ReadFile(p.logPath)
		return int64(len(b)) > p.logStart && strings.Contains(string(b[p.logStart:]), "tokenwatch run: started")
	}, func() string { return tail(logPath) })
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.kill()
		t.Fatalf("tokenwatch did not stop within a minute of SIGTERM\n%s", tail(logPath))
	}
	if p.err != nil {
		t.Fatalf("tokenwatch run after SIGTERM: %v\n%s", p.err, tail(logPath))
	}
}

// rssKiB reads VmRSS of the process from /proc.
func (p *proc) rssKiB() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// tail returns the last 40 lines of a log file.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "--- tokenwatch log (tail) ---\n" + strings.Join(lines, "\n")
}

// freeAddr returns a free 127.0.0.1 port for the telemetry listener.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// metric scrapes /metrics and returns the sum of the samples of name whose
// labels contain every given `key="value"` fragment.
func metric(addr, name string, labels ...string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name) || len(l) <= len(name) || (l[len(name)] != '{' && l[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, lb := range labels {
			ok = ok && strings.Contains(l, lb)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", l, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// ---- webhook receiver ----

// receiver is a Standard Webhooks endpoint on 127.0.0.1 that verifies every
// signature (independently of package alerts) and records every request by
// webhook-id. While down it answers 503 without looking at the request.
type receiver struct {
	srv    *httptest.Server
	secret string
	key    []byte
	status func() int // status to answer while healthy (default 204)

	mu       sync.Mutex
	down     bool
	requests int
	refused  int
	badSig   int
	byHookID map[string]hookDelivery
	bodies   [][]byte // every request body and header block, for the token search
	problems []string
}

type hookDelivery struct {
	alertID string
	update  int
	typ     string
	count   int
	alert   scenario.Alert
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	key := make([]byte, 24)
	for i := range key {
		key[i] = byte(rand.IntN(256))
	}
	r := &receiver{secret: "whsec_" + base64.StdEncoding.EncodeToString(key), key: key, byHookID: map[string]hookDelivery{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hook" }

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 8<<20))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	var hdr strings.Builder
	for k, v := range req.Header {
		fmt.Fprintf(&hdr, "%s: %s\n", k, strings.Join(v, ","))
	}
	r.bodies = append(r.bodies, append([]byte(hdr.String()), body...))
	if r.down {
		r.refused++
		http.Error(w, "receiver down", http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, r.key)
	fmt.Fprintf(mac, "%s.%s.", id, ts)
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	ok := false
	for _, sig := range strings.Fields(req.Header.Get("webhook-signature")) {
		ok = ok || hmac.Equal([]byte(sig), []byte(want))
	}
	var a struct {
		scenario.Alert
		Update int `json:"update"`
	}
	if !ok || json.Unmarshal(body, &a) != nil || a.ID == "" {
		r.badSig++
		r.problems = append(r.problems, fmt.Sprintf("webhook-id %q: bad signature or body", id))
		http.Error(w, "bad signature or body", http.StatusUnauthorized)
		return
	}
	if prev, seen := r.byHookID[id]; seen {
		if prev.alertID != a.ID || prev.update != a.Update {
			r.problems = append(r.problems, fmt.Sprintf("webhook-id %s carried alert %s/%d and then %s/%d", id, prev.alertID, prev.update, a.ID, a.Update))
		}
		prev.count++
		r.byHookID[id] = prev
	} else {
		r.byHookID[id] = hookDelivery{alertID: a.ID, update: a.Update, typ: a.Type, count: 1, alert: a.Alert}
	}
	if r.status != nil {
		if s := r.status(); s != 0 {
			w.WriteHeader(s)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// delivered returns the distinct webhook-ids received with a 2xx, their
// alerts (one per webhook-id), the number of requests, and any problem seen
// (bad signature, a webhook-id reused for another alert, one alert update
// delivered under two webhook-ids).
func (r *receiver) delivered() (ids int, alerts []scenario.Alert, requests int, problems []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byAlert := map[string]string{}
	problems = append(problems, r.problems...)
	for hid, d := range r.byHookID {
		key := d.alertID + "/" + strconv.Itoa(d.update)
		if other, dup := byAlert[key]; dup {
			problems = append(problems, fmt.Sprintf("alert %s delivered under two webhook-ids %s and %s", key, other, hid))
		}
		byAlert[key] = hid
		alerts = append(alerts, d.alert)
	}
	return len(r.byHookID), alerts, r.requests, problems
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byHookID)
}

// ---- alerts outbox ----

// outboxAlerts reads every message of the outbox topic and returns the
// distinct (alert id, update) pairs it holds.
func outboxAlerts(t *testing.T, topic string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range readTopic(t, topic) {
		var env struct {
			Alert struct {
				ID     string `json:"id"`
				Update int    `json:"update"`
			} `json:"alert"`
		}
		if err := json.Unmarshal(m.Value, &env); err != nil || env.Alert.ID == "" {
			t.Fatalf("outbox message at %d/%d is not an envelope: %v", m.Partition, m.Offset, err)
		}
		out[env.Alert.ID+"/"+strconv.Itoa(env.Alert.Update)] = true
	}
	return out
}

// readTopic reads every message of a topic (all partitions, up to their end now).
func readTopic(t *testing.T, topic string) []kafka.Message {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	conn, err := kafka.Dial("tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			return nil
		}
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	var all []kafka.Message
	for _, p := range parts {
		// A loaded single broker can answer metadata without a leader for a
		// moment, or time out: retry for up to 30 s.
		first, last, err := kafkalog.PartitionOffsets(context.Background(), brokers, topic, p.ID)
		for deadline := time.Now().Add(30 * time.Second); err != nil && time.Now().Before(deadline); {
			time.Sleep(500 * time.Millisecond)
			first, last, err = kafkalog.PartitionOffsets(context.Background(), brokers, topic, p.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
		if last <= first {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MaxBytes: 32 << 20, MaxWait: 100 * time.Millisecond})
		r.SetOffset(first)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				cancel()
				r.Close()
				t.Fatalf("read %s/%d: %v", topic, p.ID, err)
			}
			all = append(all, m)
			if m.Offset >= last-1 {
				break
			}
		}
		cancel()
		r.Close()
	}
	return all
}

// ---- configuration ----

// runConfig is the YAML of one tokenwatch run over a scenario.
type runConfig struct {
	group, outbox, dlq, stateDir, telemetry string
	topics                                  *topicSet
	scen                                    *traffic
	hook                                    *receiver
	db                                      *chDB
	extra                                   string   // appended verbatim (more top-level sections)
	alertsExtra                             string   // appended inside alerts:
	ingestExtra                             string   // appended inside ingest:
	extraSinks                              []string // more alerts.sinks entries (flow YAML); every alert goes to every sink
	extraSinkNames                          []string
}

func (c runConfig) write(t *testing.T, path string) {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	p := func(name string) string { return filepath.Join(c.scen.dir, name) }
	tel := `""`
	if c.telemetry != "" {
		tel = c.telemetry
	}
	sinks := ""
	for _, s := range c.extraSinks {
		sinks += "    - " + s + "\n"
	}
	y := fmt.Sprintf(`ingest:
  kafka:
    brokers: [%q]
    group_id: %s
    topics: %s
    batch_size: 500
    flush_interval: 20ms
    session_timeout: 6s
    rebalance_timeout: 6s
    heartbeat_interval: 500ms
%sparse:
  trusted_proxies: [127.0.0.0/8, 10.0.0.0/8, %s]
detect:
  fingerprint_key: %q
enrich:
  city_db: %q
  asn_db: %q
  reload_interval: 0s
policy:
  file: %q
  reload_interval: 0s
output:
  findings_file: %q
telemetry:
  listen: %s
alerts:
  policy:
    dedupe_window: 0s
  sinks:
    - {name: soar, type: webhook, url: %q, secrets: [%q], timeout: 5s}
%s  default_sinks: [%s]
  outbox: {brokers: [%q], topic: %s}
  dead_letter: {topic: %s}
  retry: {initial_backoff: 200ms, max_backoff: 5s}
  dispatcher: {group: %s-dispatch, state_file: %q, session_timeout: 6s, drain_timeout: 5s}
%s`, brokers[0], c.group, c.topics.yaml(), c.ingestExtra,
		strings.Join(scenario.TrustedProxies, ", "), string(c.scen.cfg.Key), p(scenario.FileCityDB), p(scenario.FileASNDB), p(scenario.FilePolicy),
		filepath.Join(c.stateDir, "findings.jsonl"), tel, c.hook.url(), c.hook.secret, sinks, strings.Join(append([]string{"soar"}, c.extraSinkNames...), ", "), brokers[0], c.outbox, c.dlq,
		c.group, filepath.Join(c.stateDir, "alerts-state.json"), c.alertsExtra)
	if c.db != nil {
		y += c.db.yaml()
	}
	y += c.extra
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
}

// caughtUp reports whether the group has committed every record of the
// source topics and the dispatcher every outbox message.
func caughtUp(t *testing.T, c runConfig) bool {
	t.Helper()
	if lag(t, c.group, c.topics.parts) != 0 {
		return false
	}
	return lag(t, c.group+"-dispatch", map[string]int{c.outbox: 1}) == 0
}

// checkScenarioAlerts scores delivered alerts against the scenario's truth:
// every planted incident and posture case reported, nothing benign. (A
// post_revocation_use whose revocation record, on its own topic, reaches the
// engine after the use counts too: the engine judges kept uses when a late
// revocation arrives.)
func checkScenarioAlerts(t *testing.T, tr *traffic, alerts []scenario.Alert) *scenario.Report {
	t.Helper()
	r := scenario.Evaluate(tr.truth, alerts)
	if len(r.Missed) > 0 || len(r.FalseAlerts) > 0 || len(r.Unexpected) > 0 || len(r.PostureMissed) > 0 || len(r.PostureFalse) > 0 {
		var sb strings.Builder
		r.Print(&sb)
		t.Errorf("delivered alerts against the scenario truth:\n%s", sb.String())
	}
	return r
}
