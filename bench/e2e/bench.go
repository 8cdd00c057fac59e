package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/tokenwatch/tokenwatch/alerts/receiver"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/bench/scenario"
)

// bytesPerUser is about how many bytes of logs the scenario writes per
// background user (10 hours of traffic, 2 app lines per auth line).
const bytesPerUser = 125_000

const benchKey = "tokenwatch-bench-e2e-key"

type results struct {
	Machine    machine `json:"machine"`
	LoadEnd    string  `json:"load_avg_end"`
	ClickHouse string  `json:"clickhouse_version"`
	Schema     string  `json:"clickhouse_schema"`
	Users      int     `json:"scenario_users"`
	Records    int     `json:"records"`
	Bytes      int64   `json:"bytes"`
	ProduceSec float64 `json:"produce_seconds"`

	BareSec     float64           `json:"bare_seconds"`
	BareRecSec  float64           `json:"bare_records_per_second"`
	BareMBSec   float64           `json:"bare_mb_per_second"`
	TWSec       float64           `json:"tokenwatch_seconds"`
	TWRecSec    float64           `json:"tokenwatch_records_per_second"`
	TWMBSec     float64           `json:"tokenwatch_mb_per_second"`
	Ratio       float64           `json:"ratio"`
	TWWallSec   float64           `json:"tokenwatch_wall_seconds"`
	CHRows      uint64            `json:"clickhouse_rows"`
	CHRowsSec   float64           `json:"clickhouse_rows_per_second"`
	CHRowsBy    map[string]uint64 `json:"clickhouse_rows_by_table,omitempty"`
	CHDistinct  map[string]uint64 `json:"clickhouse_distinct_by_table,omitempty"`
	Alerts      int               `json:"alerts_delivered"`
	Triggers    int               `json:"triggers"`
	TriggersGot int               `json:"triggers_delivered"`
	TriggerRate float64           `json:"trigger_rate"`
	LatP50ms    float64           `json:"alert_latency_p50_ms"`
	LatP99ms    float64           `json:"alert_latency_p99_ms"`
	LatMaxms    float64           `json:"alert_latency_max_ms"`
	PeakRSSMiB  float64           `json:"peak_rss_mib"`
	CPUSec      float64           `json:"cpu_seconds"`
	CPUPerGB    float64           `json:"cpu_seconds_per_gb"`
	// StageSec is the time each pipeline stage spent on batches
	// (tokenwatch_pipeline_stage_seconds_sum).
	StageSec map[string]float64 `json:"stage_seconds"`
	// Inserts, InsertSec, InsertErrors: the store's INSERTs (all tables),
	// their total time and the failed attempts (retried).
	Inserts      float64 `json:"clickhouse_inserts"`
	InsertSec    float64 `json:"clickhouse_insert_seconds"`
	InsertErrors float64 `json:"clickhouse_insert_errors"`
	BatchSize    int     `json:"batch_size"`
	InFlight     int     `json:"in_flight"`
	StateLog     bool    `json:"anomaly_state_log"`
}

func runBench(ctx context.Context, o options) error {
	timeout, err := time.ParseDuration(o.timeout)
	if err != nil {
		return usageError{fmt.Errorf("-timeout: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "bench/e2e: "+f+"\n", a...) }
	res := results{Machine: readMachine(runtime.NumCPU()), BatchSize: o.batchSize, InFlight: o.inFlight, StateLog: !o.noStateLog}
	bin := mustAbs(o.bin)

	// Servers first: fail fast when they are not there.
	stamp := time.Now().UnixNano()
	db := fmt.Sprintf("tw_e2e_%d", stamp%1e9)
	var ch *chDB
	res.Schema = "none: tokenwatch ran without the store (-no-clickhouse)"
	if !o.noStore {
		if ch, err = openClickHouse(ctx, o.clickhouse, o.chUser, o.chPassword, db, o.schema18); err != nil {
			return err
		}
		defer ch.close()
		if !o.keep {
			defer ch.drop(context.WithoutCancel(ctx))
		}
		res.ClickHouse = ch.version
		res.Schema = "store/migrations (tokenwatch migrate)"
		if ch.legacy {
			res.Schema = "18.16 variant (store/testdata/clickhouse18/schema.sql), clickhouse.migrate: false"
		}
	}

	sc := scenario.DefaultConfig()
	sc.Seed, sc.Key = o.seed, []byte(benchKey)
	sc.Users = max(20, int(o.size/bytesPerUser))
	res.Users = sc.Users
	c, err := loadScenario(filepath.Join(o.cacheDir, fmt.Sprintf("scenario-u%d-s%d", sc.Users, sc.Seed)), sc, logf)
	if err != nil {
		return err
	}
	res.Records, res.Bytes = len(c.recs), c.bytes
	logf("corpus: %d records, %.1f MB (%d users); machine: %d cores, %s, %d GiB, load %s", res.Records, float64(res.Bytes)/1e6, sc.Users, res.Machine.Cores, res.Machine.CPU, res.Machine.MemGiB, res.Machine.LoadAvg)

	prefix := fmt.Sprintf("tw-e2e-%d", stamp)
	tp := newTopics(prefix)
	if !o.keep {
		defer func() {
			if err := deleteTopics(o.brokers, prefix+"-"); err != nil {
				logf("delete the run's topics: %v", err)
			}
		}()
	}
	parts := map[string]int{tp.Auth: o.partitions, tp.App: o.partitions, tp.Revocation: 1}
	for t, n := range map[string]int{tp.Auth: o.partitions, tp.App: o.partitions, tp.Revocation: 1, tp.Live: 1, tp.Outbox: 2, tp.DLQ: 1} {
		if err := createTopic(ctx, o.brokers, t, n); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if err := produceCorpus(ctx, o.brokers, tp, c.recs); err != nil {
		return err
	}
	res.ProduceSec = time.Since(t0).Seconds()
	logf("produced to %s-{auth,app,revocations} in %.1fs (%.1f MB/s)", prefix, res.ProduceSec, float64(res.Bytes)/1e6/res.ProduceSec)
	c.recs = nil
	runtime.GC()

	// 1. The bare consumer.
	bare, err := consumeBare(ctx, o.brokers, prefix+"-bare", []string{tp.Auth, tp.App, tp.Revocation}, 4096, res.Records)
	if err != nil {
		return fmt.Errorf("bare consumer: %w", err)
	}
	res.BareSec = bare.seconds
	res.BareRecSec = float64(bare.records) / bare.seconds
	res.BareMBSec = float64(bare.bytes) / 1e6 / bare.seconds
	logf("bare kafka-go consumer: %d records in %.1fs: %.0f records/s, %.1f MB/s", bare.records, bare.seconds, res.BareRecSec, res.BareMBSec)

	// 2. tokenwatch run.
	lat := &latencies{sent: map[string]time.Time{}}
	recv, err := receiver.Start(lat.received)
	if err != nil {
		return err
	}
	defer recv.Close()
	runDir := filepath.Join(o.cacheDir, "run-"+strconv.FormatInt(stamp, 10))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	group := prefix + "-tokenwatch"
	if err := createStateTopic(ctx, o.brokers, group); err != nil {
		return err
	}
	cfgPath := filepath.Join(runDir, "tokenwatch.yaml")
	metricsAddr, err := freePort()
	if err != nil {
		return err
	}
	if err := writeConfig(cfgPath, twConfig{
		Telemetry: metricsAddr, BatchSize: o.batchSize, InFlight: o.inFlight,
		Broker: o.brokers, Group: group, Topics: tp, Live: true, ClickHouse: o.clickhouse, DB: db, CHUser: o.chUser, NoStore: o.noStore, NoStateLog: o.noStateLog, Migrate: ch != nil && !ch.legacy,
		WebhookURL: recv.URL, Secret: recv.Secret, StateFile: filepath.Join(runDir, "alerts-state.json"), Key: benchKey,
		Dir: mustAbs(c.dir), TrustedProxies: scenario.TrustedProxies,
	}); err != nil {
		return err
	}
	logPath := filepath.Join(runDir, "tokenwatch.log")
	start := time.Now()
	p, err := startTokenwatch(bin, []string{"run", "--config", cfgPath}, logPath, o.chPassword)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = p.stop(30 * time.Second)
		}
	}()
	cl := &kafka.Client{Addr: kafka.TCP(o.brokers), Timeout: 10 * time.Second}

	// Triggers: one app-log line with a fresh JWT per 1/rate, on the live topic.
	trig := newTriggers(o.brokers, tp.Live, lat)
	defer trig.close()
	var firstAt time.Time
	var firstN int64
	stopTrig := make(chan struct{})
	trigDone := make(chan struct{})
	trigStarted := false
	lastLog := time.Now()
	for {
		if ended, werr := p.exited(); ended {
			return fmt.Errorf("tokenwatch run exited early (%v); see %s", werr, logPath)
		}
		n, err := committed(ctx, cl, group, parts)
		now := time.Now()
		if err == nil && n > 0 && firstAt.IsZero() {
			firstAt, firstN = now, n
			trigStarted = true
			go func() { defer close(trigDone); trig.run(ctx, o.alertRate, stopTrig) }()
		}
		if err == nil && n >= int64(res.Records) {
			res.TWSec = now.Sub(firstAt).Seconds()
			res.TWWallSec = now.Sub(start).Seconds()
			if res.TWSec <= 0 { // everything in one commit: use the wall time
				res.TWSec, firstN = res.TWWallSec, 0
			}
			res.TWRecSec = float64(int64(res.Records)-firstN) / res.TWSec
			res.TWMBSec = float64(res.Bytes) * (float64(int64(res.Records)-firstN) / float64(res.Records)) / 1e6 / res.TWSec
			break
		}
		if now.Sub(lastLog) > 10*time.Second {
			lastLog = now
			logf("tokenwatch: %d/%d records committed, %d alerts received, load %s", n, res.Records, recv.Count(), loadAvg())
		}
		if ctx.Err() != nil {
			return fmt.Errorf("timed out with %d/%d records committed: %w", n, res.Records, ctx.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
	hwm, cpu, err := procStats(p.cmd.Process.Pid)
	if err != nil {
		return fmt.Errorf("read /proc of tokenwatch: %w", err)
	}
	res.PeakRSSMiB = float64(hwm) / (1 << 20)
	res.CPUSec = cpu.Seconds()
	res.CPUPerGB = res.CPUSec / (float64(res.Bytes) / 1e9)
	if m, err := scrapeMetrics(metricsAddr); err != nil {
		logf("scrape /metrics of tokenwatch: %v", err)
	} else {
		res.StageSec, res.Inserts, res.InsertSec, res.InsertErrors = m.stageSec, m.inserts, m.insertSec, m.insertErrors
	}
	if trigStarted {
		close(stopTrig)
		<-trigDone
	}
	// The last triggers' alerts: wait until all arrived (or two minutes).
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if lat.pending() == 0 {
			break
		}
	}
	if ch != nil {
		counts, err := ch.counts(ctx)
		if err != nil {
			return err
		}
		res.CHRowsBy = counts
		for _, v := range counts {
			res.CHRows += v
		}
		res.CHRowsSec = float64(res.CHRows) / res.TWWallSec
		if res.CHDistinct, err = ch.distinct(ctx); err != nil {
			return err
		}
	}
	stopped = true
	if err := p.stop(90 * time.Second); err != nil {
		logf("tokenwatch stop: %v", err)
	}
	res.Alerts = recv.Count()
	res.Triggers, res.TriggersGot, res.TriggerRate = trig.sentCount(), lat.count(), trig.achievedRate()
	res.LatP50ms, res.LatP99ms, res.LatMaxms = lat.percentiles()
	res.Ratio = res.TWRecSec / res.BareRecSec
	res.LoadEnd = loadAvg()
	if recv.Rejected.Load() > 0 {
		return fmt.Errorf("the receiver rejected %d webhooks (bad signature)", recv.Rejected.Load())
	}
	printResults(os.Stdout, res)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if res.TriggersGot < res.Triggers {
		return fmt.Errorf("%d of %d trigger alerts reached the webhook", res.TriggersGot, res.Triggers)
	}
	return nil
}

func printResults(w *os.File, r results) {
	fmt.Fprintf(w, "\n## tokenwatch end-to-end benchmark (bench/e2e)\n\n")
	fmt.Fprintf(w, "Machine: %d cores (%s), %d GiB RAM, Linux %s; load average %s at start, %s at end (shared machine).\n",
		r.Machine.Cores, r.Machine.CPU, r.Machine.MemGiB, r.Machine.Kernel, r.Machine.LoadAvg, r.LoadEnd)
	fmt.Fprintf(w, "Corpus: scenario generator, %d users: %s records, %.1f MB (auth access logs with bearer JWTs, application logs, revocations) on 3 topics; produced in %.1fs.\n",
		r.Users, commas(int64(r.Records)), float64(r.Bytes)/1e6, r.ProduceSec)
	if r.ClickHouse != "" {
		fmt.Fprintf(w, "ClickHouse %s, schema: %s.\n\n", r.ClickHouse, r.Schema)
	} else {
		fmt.Fprintf(w, "ClickHouse: %s.\n\n", r.Schema)
	}
	fmt.Fprintf(w, "tokenwatch: batches of %d records, %d in flight, anomaly state log %s.\n\n", r.BatchSize, r.InFlight, map[bool]string{true: "on", false: "off"}[r.StateLog])
	fmt.Fprintf(w, "| metric | value |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(w, "| %s | %s |\n", k, v) }
	row("tokenwatch run throughput", fmt.Sprintf("%s records/s, %.1f MB/s", commas(int64(r.TWRecSec)), r.TWMBSec))
	row("bare kafka-go consumer (same topics, same run)", fmt.Sprintf("%s records/s, %.1f MB/s", commas(int64(r.BareRecSec)), r.BareMBSec))
	row("ratio tokenwatch / bare", fmt.Sprintf("%.2f", r.Ratio))
	row("tokenwatch wall time (start to last commit)", fmt.Sprintf("%.1f s", r.TWWallSec))
	if r.ClickHouse != "" {
		by := []string{}
		for _, t := range []string{"token_events", "findings", "alerts", "revocations"} {
			by = append(by, fmt.Sprintf("%s %s", t, commas(int64(r.CHRowsBy[t]))))
		}
		row("ClickHouse rows written", fmt.Sprintf("%s (%s)", commas(int64(r.CHRows)), strings.Join(by, ", ")))
		var dup []string
		for _, t := range []string{"token_events", "findings", "alerts", "revocations"} {
			dup = append(dup, fmt.Sprintf("%s %s", t, commas(int64(r.CHDistinct[t]))))
		}
		row("distinct rows (uniqExact of the row or alert id)", strings.Join(dup, ", "))
		row("ClickHouse rows/s (rows / wall time)", commas(int64(r.CHRowsSec)))
		if r.Inserts > 0 {
			row("ClickHouse INSERTs", fmt.Sprintf("%s, mean %.0f ms each, %.0f failed attempts retried", commas(int64(r.Inserts)), 1000*r.InsertSec/r.Inserts, r.InsertErrors))
		}
	}
	row("alerts delivered (signed webhooks)", commas(int64(r.Alerts)))
	row("alert latency p50 / p99 / max", fmt.Sprintf("%.0f ms / %.0f ms / %.0f ms (%d trigger alerts at %.1f/s, %d delivered)", r.LatP50ms, r.LatP99ms, r.LatMaxms, r.Triggers, r.TriggerRate, r.TriggersGot))
	row("peak RSS of tokenwatch (VmHWM)", fmt.Sprintf("%.0f MiB", r.PeakRSSMiB))
	row("CPU of tokenwatch (user+sys)", fmt.Sprintf("%.1f s, %.1f s per GB", r.CPUSec, r.CPUPerGB))
	if len(r.StageSec) > 0 {
		names := make([]string, 0, len(r.StageSec))
		for k := range r.StageSec {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool { return r.StageSec[names[i]] > r.StageSec[names[j]] })
		parts := make([]string, len(names))
		for i, k := range names {
			parts[i] = fmt.Sprintf("%s %.1f s", k, r.StageSec[k])
		}
		row("time in each pipeline stage (sum over batches)", strings.Join(parts, ", "))
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// --- the bare consumer ----------------------------------------------------

type bareResult struct {
	records int
	bytes   int64
	seconds float64
}

// consumeBare is the baseline: a consumer-group Reader on the topics,
// FetchMessage in batches (cut after 200ms like tokenwatch's), CommitMessages
// after each batch. Timing starts with the first batch (group join excluded).
func consumeBare(ctx context.Context, broker, group string, topics []string, batch, n int) (bareResult, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{broker}, GroupID: group, GroupTopics: topics,
		StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
		QueueCapacity: 8192, HeartbeatInterval: 3 * time.Second, SessionTimeout: 30 * time.Second,
	})
	defer r.Close()
	var res bareResult
	var start time.Time
	msgs := make([]kafka.Message, 0, batch)
	for res.records < n {
		msgs = msgs[:0]
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return res, err
		}
		if start.IsZero() {
			start = time.Now()
		}
		msgs = append(msgs, m)
		fctx, fcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		for len(msgs) < batch && res.records+len(msgs) < n {
			m, err := r.FetchMessage(fctx)
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		fcancel()
		for i := range msgs {
			res.bytes += int64(len(msgs[i].Value))
		}
		if err := r.CommitMessages(ctx, msgs...); err != nil {
			return res, fmt.Errorf("commit: %w", err)
		}
		res.records += len(msgs)
	}
	res.seconds = time.Since(start).Seconds()
	return res, nil
}

// --- alert latency --------------------------------------------------------

// latencies matches trigger JWT ids (jti) sent with the token_leak alerts received.
type latencies struct {
	mu   sync.Mutex
	sent map[string]time.Time
	lat  []time.Duration
}

func (l *latencies) sending(jti string, t time.Time) {
	l.mu.Lock()
	l.sent[jti] = t
	l.mu.Unlock()
}

func (l *latencies) received(a tokenwatch.Alert, at time.Time) {
	if a.Type != tokenwatch.AlertTokenLeak || a.Update != 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if t0, ok := l.sent[a.JTI]; ok {
		l.lat = append(l.lat, at.Sub(t0))
		delete(l.sent, a.JTI)
	}
}

func (l *latencies) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sent)
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lat)
}

func (l *latencies) percentiles() (p50, p99, mx float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lat) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(l.lat)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return ms(s[len(s)*50/100]), ms(s[min(len(s)-1, len(s)*99/100)]), ms(s[len(s)-1])
}

// triggers produces application log lines with a fresh JWT each (one
// token_leak alert each) at a steady rate.
type triggers struct {
	w      *kafka.Writer
	lat    *latencies
	mu     sync.Mutex
	n      int
	begin  time.Time
	end    time.Time
	errMsg string
}

func newTriggers(broker, topic string, lat *latencies) *triggers {
	t := &triggers{lat: lat}
	// Asynchronous (acks=all, 1 ms linger): latency counts from the moment
	// the line is handed to the Kafka client.
	t.w = &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.RoundRobin{}, BatchTimeout: time.Millisecond,
		RequiredAcks: kafka.RequireAll, Async: true, Completion: func(_ []kafka.Message, err error) {
			if err != nil {
				t.mu.Lock()
				t.errMsg = err.Error()
				t.mu.Unlock()
			}
		}}
	return t
}

func (t *triggers) run(ctx context.Context, rate int, stop <-chan struct{}) {
	if rate <= 0 {
		return
	}
	interval := time.Second / time.Duration(rate)
	t.mu.Lock()
	t.begin = time.Now()
	t.mu.Unlock()
	next := time.Now()
	for i := 0; ; i++ {
		select {
		case <-stop:
			t.mu.Lock()
			t.end = time.Now()
			t.mu.Unlock()
			return
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		next = next.Add(interval)
		jti := fmt.Sprintf("e2e-trigger-%d", i)
		line := `{"time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","level":"debug","service":"orders","msg":"calling upstream","headers":{"authorization":"Bearer ` + triggerJWT(jti) + `"}}`
		t.lat.sending(jti, time.Now())
		if err := t.w.WriteMessages(ctx, kafka.Message{Value: []byte(line)}); err != nil {
			return
		}
		t.mu.Lock()
		t.n++
		t.mu.Unlock()
	}
}

func (t *triggers) sentCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

func (t *triggers) achievedRate() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.end.IsZero() || t.n == 0 {
		return 0
	}
	return float64(t.n) / t.end.Sub(t.begin).Seconds()
}

func (t *triggers) close() { _ = t.w.Close() }

// triggerJWT is an unsigned-looking HS256 JWT (fake signature) whose jti is id.
func triggerJWT(id string) string {
	enc := base64.RawURLEncoding.EncodeToString
	h := enc([]byte(`{"alg":"HS256","typ":"JWT"}`))
	p := enc([]byte(`{"iss":"https://idp.example.com","sub":"bench-` + id + `","jti":"` + id + `","exp":1900000000}`))
	return h + "." + p + "." + strings.Repeat("S", 43)
}
