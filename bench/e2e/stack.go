package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/bench/scenario"
	"github.com/tokenwatch/tokenwatch/store"
)

// topics of one run: the scenario's files by kind, and the trigger topic.
type topics struct {
	Auth, App, Revocation, Live, Outbox, DLQ string
}

func newTopics(prefix string) topics {
	return topics{Auth: prefix + "-auth", App: prefix + "-app", Revocation: prefix + "-revocations", Live: prefix + "-live", Outbox: prefix + "-alerts", DLQ: prefix + "-alerts-dlq"}
}

func (t topics) forKind(k tokenwatch.SourceKind) string {
	switch k {
	case tokenwatch.KindApp:
		return t.App
	case tokenwatch.KindRevocation:
		return t.Revocation
	}
	return t.Auth
}

// corpus is a scenario loaded in event-time order.
type corpus struct {
	dir   string
	truth *scenario.Truth
	recs  []tokenwatch.Record
	bytes int64
}

// loadScenario generates (or reuses) the scenario cfg in dir and loads its
// records in event-time order.
func loadScenario(dir string, cfg scenario.Config, logf func(string, ...any)) (*corpus, error) {
	truthPath := filepath.Join(dir, scenario.FileTruth)
	var truth *scenario.Truth
	if b, err := os.ReadFile(truthPath); err == nil {
		truth = new(scenario.Truth)
		if err := json.Unmarshal(b, truth); err != nil {
			return nil, fmt.Errorf("read %s: %w", truthPath, err)
		}
		logf("reusing the scenario in %s", dir)
	} else {
		logf("generating the scenario (%d users, seed %d) into %s", cfg.Users, cfg.Seed, dir)
		t0 := time.Now()
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if truth, err = scenario.Generate(dir, cfg); err != nil {
			return nil, fmt.Errorf("generate scenario: %w", err)
		}
		logf("generated in %.1fs", time.Since(t0).Seconds())
	}
	src, err := scenario.OpenReplay(dir, 4096)
	if err != nil {
		return nil, err
	}
	c := &corpus{dir: dir, truth: truth, bytes: src.Bytes()}
	b := &tokenwatch.Batch{}
	for {
		b.Records = b.Records[:0]
		err := src.Next(context.Background(), b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		c.recs = append(c.recs, b.Records...)
	}
	return c, nil
}

// createTopic creates topic with n partitions (replication 1) and waits until
// its partitions have leaders.
func createTopic(ctx context.Context, broker, topic string, n int, entries ...kafka.ConfigEntry) error {
	conn, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		return usageError{fmt.Errorf("kafka %s not reachable (make servers-up, or docker compose up): %w", broker, err)}
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find the kafka controller: %w", err)
	}
	cc, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("dial the kafka controller: %w", err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: n, ReplicationFactor: 1, ConfigEntries: entries}); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		parts, err := conn.ReadPartitions(topic)
		ok := err == nil && len(parts) == n
		for _, p := range parts {
			ok = ok && p.Leader.ID >= 0 && p.Leader.Host != ""
		}
		if ok && partitionsServe(ctx, broker, topic, n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s: partitions have no leader after a minute (%v)", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// partitionsServe reports whether the leader of each partition answers a
// ListOffsets for it (metadata can name a leader before it serves).
func partitionsServe(ctx context.Context, broker, topic string, n int) bool {
	for p := range n {
		conn, err := kafka.DialLeader(ctx, "tcp", broker, topic, p)
		if err != nil {
			return false
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			return false
		}
	}
	return true
}

// deleteTopics deletes the topics that exist and whose names start with
// prefix (the benchmark's corpus is a gigabyte per run).
func deleteTopics(broker, prefix string) error {
	conn, err := kafka.Dial("tcp", broker)
	if err != nil {
		return err
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var names []string
	for _, p := range parts {
		if strings.HasPrefix(p.Topic, prefix) && !seen[p.Topic] {
			seen[p.Topic] = true
			names = append(names, p.Topic)
		}
	}
	if len(names) == 0 {
		return nil
	}
	ctrl, err := conn.Controller()
	if err != nil {
		return err
	}
	cc, err := kafka.Dial("tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return err
	}
	defer cc.Close()
	return cc.DeleteTopics(names...)
}

// createStateTopic creates tokenwatch's state log topics (<group>-anomaly-state
// and <group>-policy-state: compacted, 4 partitions, as tokenwatch would
// create them) and waits until they are served, as a deployment would
// provision them: tokenwatch run reads them right after creating them itself,
// which can fail while a new topic's partitions have no leader yet.
func createStateTopic(ctx context.Context, broker, group string) error {
	for _, suffix := range []string{"-anomaly-state", "-policy-state"} {
		if err := createTopic(ctx, broker, group+suffix, 4, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"}); err != nil {
			return err
		}
	}
	return nil
}

// produceCorpus writes every record, in order, to the topic of its kind; the
// messages of one topic keep their relative order per partition.
func produceCorpus(ctx context.Context, broker string, tp topics, recs []tokenwatch.Record) error {
	w := &kafka.Writer{
		Addr: kafka.TCP(broker), Balancer: &kafka.RoundRobin{},
		BatchSize: 2000, BatchBytes: 900 << 10, BatchTimeout: 10 * time.Millisecond, // under the broker's 1 MB message.max.bytes
		RequiredAcks: kafka.RequireOne, Transport: &kafka.Transport{MetadataTTL: time.Second},
	}
	defer w.Close()
	msgs := make([]kafka.Message, 0, 20000)
	flush := func() error {
		for attempt := 0; ; attempt++ {
			err := w.WriteMessages(ctx, msgs...)
			if err == nil {
				msgs = msgs[:0]
				return nil
			}
			if !errors.Is(err, kafka.UnknownTopicOrPartition) && !errors.Is(err, kafka.LeaderNotAvailable) || attempt == 100 {
				var we kafka.WriteErrors
				if errors.As(err, &we) {
					for _, e := range we {
						if e != nil {
							return fmt.Errorf("produce: %d of %d messages failed, first: %w", we.Count(), len(we), e)
						}
					}
				}
				return fmt.Errorf("produce: %w", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := range recs {
		msgs = append(msgs, kafka.Message{Topic: tp.forKind(recs[i].Kind), Value: recs[i].Raw})
		if len(msgs) == cap(msgs) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(msgs) > 0 {
		return flush()
	}
	return nil
}

// committed returns the sum of the offsets group committed on topics (each
// topic's partitions 0..parts-1).
func committed(ctx context.Context, cl *kafka.Client, group string, parts map[string]int) (int64, error) {
	req := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	for t, n := range parts {
		for p := range n {
			req.Topics[t] = append(req.Topics[t], p)
		}
	}
	resp, err := cl.OffsetFetch(ctx, req)
	if err != nil {
		return 0, err
	}
	if resp.Error != nil {
		return 0, resp.Error
	}
	var sum int64
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error == nil && p.CommittedOffset > 0 {
				sum += p.CommittedOffset
			}
		}
	}
	return sum, nil
}

// --- ClickHouse -----------------------------------------------------------

type chDB struct {
	conn    driver.Conn
	db      string
	version string
	legacy  bool // older than 20.x: the 18.16 schema, no migrations
}

// openClickHouse connects and creates database db: with `tokenwatch migrate`
// on a current server, from schema18 on an older one.
func openClickHouse(ctx context.Context, addr, user, password, db, schema18 string) (*chDB, error) {
	cfg := store.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.Username, cfg.Password = []string{addr}, db, user, password
	conn, err := store.Dial(cfg)
	if err != nil {
		return nil, usageError{fmt.Errorf("clickhouse %s: %w", addr, err)}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		conn.Close()
		return nil, usageError{fmt.Errorf("clickhouse %s not reachable (make servers-up, or docker compose up): %w", addr, err)}
	}
	v, err := conn.ServerVersion()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse server version: %w", err)
	}
	c := &chDB{conn: conn, db: db, version: fmt.Sprintf("%d.%d.%d", v.Version.Major, v.Version.Minor, v.Version.Patch), legacy: v.Version.Major < 20}
	if c.legacy {
		src, err := os.ReadFile(schema18)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("clickhouse %s is %s, older than 20.x: the 18.16 schema is needed: %w", addr, c.version, err)
		}
		for _, stmt := range strings.Split(strings.ReplaceAll(string(src), "{{db}}", db), ";\n") {
			if strings.TrimSpace(stripComments(stmt)) == "" {
				continue
			}
			if err := conn.Exec(ctx, stmt); err != nil {
				conn.Close()
				return nil, fmt.Errorf("create the 18.16 tables: %w", err)
			}
		}
	}
	return c, nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// counts returns count() of each table (rows written, before merges fold copies).
func (c *chDB) counts(ctx context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, t := range []string{"token_events", "findings", "alerts", "revocations"} {
		var n uint64
		if err := c.conn.QueryRow(ctx, "SELECT count() FROM "+c.db+"."+t).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s.%s: %w", c.db, t, err)
		}
		out[t] = n
	}
	return out, nil
}

// distinct returns the rows each table holds once duplicates are folded
// (uniqExact of the row id; alerts: of the alert id), which a replay after a
// redelivery must not change.
func (c *chDB) distinct(ctx context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	for t, key := range map[string]string{"token_events": "row_id", "findings": "row_id", "alerts": "id", "revocations": "row_id"} {
		var n uint64
		if err := c.conn.QueryRow(ctx, "SELECT uniqExact("+key+") FROM "+c.db+"."+t).Scan(&n); err != nil {
			return nil, fmt.Errorf("count distinct %s.%s: %w", c.db, t, err)
		}
		out[t] = n
	}
	return out, nil
}

func (c *chDB) drop(ctx context.Context) {
	_ = c.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+c.db)
}

func (c *chDB) close() { c.conn.Close() }

// --- the tokenwatch process ---------------------------------------------------

type twConfig struct {
	Broker, Group      string
	Topics             topics
	Partitions         int
	Live               bool
	NoStore            bool
	NoStateLog         bool
	BatchSize          int
	InFlight           int
	ClickHouse, DB     string
	CHUser             string
	Migrate            bool
	WebhookURL, Secret string
	StateFile          string
	Key                string
	Dir                string // scenario dir (GeoIP databases, policy)
	TrustedProxies     []string
	Telemetry          string // host:port of /metrics, "" for none
}

var configTemplate = template.Must(template.New("cfg").Parse(`# written by bench/e2e
ingest:
  kafka:
    brokers: [{{printf "%q" .Broker}}]
    group_id: {{.Group}}
    start_offset: earliest
{{- if .BatchSize}}
    batch_size: {{.BatchSize}}
{{- end}}
    topics:
      - {name: {{.Topics.Auth}}, kind: auth}
      - {name: {{.Topics.App}}, kind: app}
      - {name: {{.Topics.Revocation}}, kind: revocation}
{{- if .Live}}
      - {name: {{.Topics.Live}}, kind: app}
{{- end}}
{{- if .InFlight}}
pipeline:
  in_flight: {{.InFlight}}
{{- end}}
{{- if .NoStateLog}}
anomaly:
  state_log: {disabled: true}
{{- end}}
parse:
  trusted_proxies: [127.0.0.0/8, "::1/128", 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "fc00::/7"{{range .TrustedProxies}}, {{printf "%q" .}}{{end}}]
detect:
  fingerprint_key: {{printf "%q" .Key}}
enrich:
  city_db: {{printf "%q" (print .Dir "/city.mmdb")}}
  asn_db: {{printf "%q" (print .Dir "/asn.mmdb")}}
  reload_interval: 0s
policy:
  file: {{printf "%q" (print .Dir "/policy.yaml")}}
  reload_interval: 0s
{{- if not .NoStore}}
clickhouse:
  addr: [{{printf "%q" .ClickHouse}}]
  database: {{.DB}}
  username: {{printf "%q" .CHUser}}
  password: ${CLICKHOUSE_PASSWORD}
  migrate: {{.Migrate}}
{{- end}}
alerts:
  sinks:
    - {name: receiver, type: webhook, url: {{printf "%q" .WebhookURL}}, secrets: [{{printf "%q" .Secret}}], template: raw, timeout: 10s}
  default_sinks: [receiver]
  outbox: {brokers: [{{printf "%q" .Broker}}], topic: {{.Topics.Outbox}}}
  dead_letter: {topic: {{.Topics.DLQ}}}
  dispatcher: {in_process: true, group: {{.Group}}-dispatch, state_file: {{printf "%q" .StateFile}}, drain_timeout: 60s}
telemetry:
  listen: {{printf "%q" .Telemetry}}
`))

func writeConfig(path string, c twConfig) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := configTemplate.Execute(f, c); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type proc struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// startTokenwatch runs bin with args; chPassword reaches the configuration's
// ${CLICKHOUSE_PASSWORD} through the environment, never a file.
func startTokenwatch(bin string, args []string, logPath, chPassword string) (*proc, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, usageError{fmt.Errorf("tokenwatch binary %s: %w (go build -o %s ./cmd/tokenwatch)", bin, err, bin)}
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), "TOKENWATCH_FINGERPRINT_KEY=", "CLICKHOUSE_PASSWORD="+chPassword)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, log: lf, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// exited reports whether the process ended (and how).
func (p *proc) exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// stop sends SIGTERM and waits up to wait, then SIGKILL.
func (p *proc) stop(wait time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	defer p.log.Close()
	select {
	case err := <-p.done:
		return err
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("tokenwatch did not stop within %s after SIGTERM; killed", wait)
	}
}

// procStats reads the peak resident set (VmHWM) and the CPU time
// (utime+stime) of pid from /proc.
func procStats(pid int) (hwmBytes int64, cpu time.Duration, err error) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			hwmBytes = kb << 10
		}
	}
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name "(…)": state is field 3; utime 14, stime 15.
	rest := strings.Fields(string(s[strings.LastIndexByte(string(s), ')')+1:]))
	if len(rest) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(rest[11], 10, 64)
	stt, _ := strconv.ParseInt(rest[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return hwmBytes, time.Duration(ut+stt) * time.Second / clkTck, nil
}

// --- the machine -----------------------------------------------------------

type machine struct {
	Cores   int    `json:"cores"`
	CPU     string `json:"cpu"`
	MemGiB  int64  `json:"mem_gib"`
	Kernel  string `json:"kernel"`
	LoadAvg string `json:"load_avg"`
}

func readMachine(cores int) machine {
	m := machine{Cores: cores}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				m.MemGiB = (kb + 512<<10) >> 20
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAvg = loadAvg()
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// freePort returns a 127.0.0.1 address that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scraped holds what the benchmark reads from tokenwatch's /metrics.
type scraped struct {
	stageSec     map[string]float64 // tokenwatch_pipeline_stage_seconds_sum by stage
	inserts      float64            // tokenwatch_store_insert_duration_seconds_count, all tables
	insertSec    float64            // tokenwatch_store_insert_duration_seconds_sum, all tables
	insertErrors float64            // tokenwatch_store_insert_errors_total, all tables
}

// scrapeMetrics reads tokenwatch's /metrics.
func scrapeMetrics(addr string) (scraped, error) {
	out := scraped{stageSec: map[string]float64{}}
	cl := &http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		i := strings.LastIndexByte(l, ' ')
		if i < 0 || strings.HasPrefix(l, "#") {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			continue
		}
		name, labels, _ := strings.Cut(l[:i], "{")
		switch name {
		case "tokenwatch_pipeline_stage_seconds_sum":
			if stage, ok := strings.CutPrefix(labels, `stage="`); ok {
				out.stageSec[strings.TrimSuffix(stage, `"}`)] = v
			}
		case "tokenwatch_store_insert_duration_seconds_count":
			out.inserts += v
		case "tokenwatch_store_insert_duration_seconds_sum":
			out.insertSec += v
		case "tokenwatch_store_insert_errors_total":
			out.insertErrors += v
		}
	}
	return out, sc.Err()
}
