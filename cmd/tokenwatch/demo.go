package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/alerts"
	"github.com/tokenwatch/tokenwatch/alerts/receiver"
	"github.com/tokenwatch/tokenwatch/bench/scenario"
	"github.com/tokenwatch/tokenwatch/config"
	"github.com/tokenwatch/tokenwatch/pipeline"
	"github.com/tokenwatch/tokenwatch/report"
	"github.com/tokenwatch/tokenwatch/telemetry"
)

func init() {
	register(&command{name: "demo", summary: "generate traffic with planted token incidents and watch tokenwatch catch them", run: runDemo})
}

const demoUsage = `usage: tokenwatch demo [--out DIR] [--users N] [--seed N]

Runs the whole pipeline in this process on generated traffic, with nothing else
installed: it writes a scenario (nginx and Envoy access logs with Authorization
headers, application logs, revocations, GeoIP databases and a policy file) with
planted incidents (impossible travel, replays, leaked tokens replayed, use after
revocation or expiry, unsigned JWTs accepted, posture problems) and benign
look-alikes; replays it as live traffic through scan, parse, GeoIP, the anomaly
engine and the policy checks; delivers every alert as a signed webhook to a
receiver it starts on 127.0.0.1; and prints what it found, scored against what
was planted. It writes DIR/report.html (timeline, map, leaks per service),
DIR/alerts.jsonl and DIR/findings.jsonl.

Exit status: 0 when every planted incident was caught and nothing benign
alerted, 1 otherwise, 2 on a usage or I/O error.

Flags:
`

// demoKey is the fingerprint key of the demo; the scenario's truth is computed with it.
const demoKey = "tokenwatch-demo-key"

func runDemo(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "demo", demoUsage)
	out := fs.String("out", filepath.Join("out", "demo"), "directory for the scenario, the report and the outputs")
	sc := scenario.DefaultConfig()
	fs.IntVar(&sc.Users, "users", sc.Users, "background users (ordinary traffic)")
	fs.Uint64Var(&sc.Seed, "seed", sc.Seed, "scenario seed")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 || sc.Users < 1 {
		fs.Usage()
		return exitUsage
	}
	sc.Key = []byte(demoKey)
	d := &demo{env: env, out: *out}
	code, err := d.run(ctx, sc)
	if err != nil {
		return fail(env, "demo", err)
	}
	return code
}

type demo struct {
	env *cliEnv
	out string
}

func (d *demo) run(ctx context.Context, sc scenario.Config) (int, error) {
	dir := filepath.Join(d.out, "scenario")
	if err := os.RemoveAll(d.out); err != nil {
		return 0, err
	}
	fmt.Fprintf(d.env.stderr, "tokenwatch demo: generating traffic with planted incidents into %s\n", dir)
	truth, err := scenario.Generate(dir, sc)
	if err != nil {
		return 0, err
	}

	recv, err := receiver.Start(nil)
	if err != nil {
		return 0, err
	}
	defer recv.Close()

	cfg := d.config(dir, recv)
	if err := cfg.Validate(); err != nil {
		return 0, fmt.Errorf("demo configuration: %w", err)
	}
	// The demo's fingerprints must be the scenario's: ignore a key in the environment.
	envNoKey := *d.env
	envNoKey.getenv = func(k string) string {
		if k == "TOKENWATCH_FINGERPRINT_KEY" {
			return ""
		}
		return d.env.getenv(k)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	prev := slog.Default()
	slog.SetDefault(quiet)
	defer slog.SetDefault(prev)
	tel := telemetry.New(cfg.Telemetry, quiet)
	stages, names, closeStages, err := buildStages(ctx, cfg, &envNoKey, tel)
	if err != nil {
		return 0, err
	}
	st := &demoStats{kinds: map[string]int{}, leaks: map[string]int{}}
	stages = append(stages, st)
	names = append(names, "demo-stats")

	src, err := scenario.OpenReplay(dir, 1024)
	if err != nil {
		closeStages()
		return 0, err
	}
	total := src.Len()
	fmt.Fprintf(d.env.stderr, "tokenwatch demo: replaying %d records (%.1f MB) through %s\n", total, float64(src.Bytes())/1e6, strings.Join(names, " → "))
	start := time.Now()
	stopProgress := d.progress(st, recv, total, start)
	runErr := pipeline.Run(ctx, src, stages, pipeline.WithConfig(cfg.Pipeline), pipeline.WithStageNames(names...))
	elapsed := time.Since(start)
	closeStages() // drains the in-process dispatcher into the receiver
	stopProgress()
	if runErr != nil {
		return 0, runErr
	}

	// The newest update of each delivered alert, by event time.
	delivered := recv.Alerts()
	sort.SliceStable(delivered, func(i, j int) bool { return delivered[i].EventTime.Before(delivered[j].EventTime) })
	if err := writeAlerts(filepath.Join(d.out, "alerts.jsonl"), delivered); err != nil {
		return 0, err
	}
	scoreAlerts := make([]scenario.Alert, len(delivered))
	for i, a := range delivered {
		scoreAlerts[i] = scenario.Alert{ID: a.ID, Type: a.Type, Fingerprint: a.Fingerprint, ClientID: a.ClientID, Service: a.Service, EventTime: a.EventTime, Summary: a.Summary}
	}
	score := scenario.Evaluate(truth, scoreAlerts)
	reportPath := filepath.Join(d.out, "report.html")
	if err := d.writeReport(reportPath, st, delivered, score, total, src.Bytes(), elapsed); err != nil {
		return 0, err
	}
	d.summary(st, recv, delivered, score, total, src.Bytes(), elapsed, reportPath)
	if len(score.Missed) > 0 || len(score.FalseAlerts) > 0 || len(score.PostureMissed) > 0 || len(score.PostureFalse) > 0 {
		return exitFindings, nil
	}
	return exitOK, nil
}

// config is the embedded default configuration of the demo.
func (d *demo) config(dir string, recv *receiver.Receiver) config.Config {
	cfg := config.DefaultConfig()
	cfg.Detect.FingerprintKey = demoKey
	cfg.Parse.TrustedProxies = append(cfg.Parse.TrustedProxies, scenario.TrustedProxies...)
	cfg.Enrich.CityDB = filepath.Join(dir, scenario.FileCityDB)
	cfg.Enrich.ASNDB = filepath.Join(dir, scenario.FileASNDB)
	cfg.Enrich.ReloadInterval = 0
	cfg.Policy.File = filepath.Join(dir, scenario.FilePolicy)
	cfg.Policy.ReloadInterval = 0
	cfg.Output.FindingsFile = filepath.Join(d.out, "findings.jsonl")
	cfg.Telemetry.Listen = ""
	cfg.Alerts.Outbox.File = filepath.Join(d.out, "outbox.jsonl")
	cfg.Alerts.Outbox.Brokers = nil
	cfg.Alerts.Sinks = []alerts.SinkConfig{{Name: "demo-webhook", Type: alerts.SinkWebhook, URL: recv.URL, Secrets: []string{recv.Secret}, Template: "raw", Timeout: 5 * time.Second}}
	cfg.Alerts.DefaultSinks = []string{"demo-webhook"}
	cfg.Alerts.Dispatcher.InProcess = true
	cfg.Alerts.Dispatcher.StateFile = filepath.Join(d.out, "alerts-state.json")
	cfg.Alerts.Dispatcher.DrainTimeout = 30 * time.Second
	return cfg
}

// progress prints a live progress line until the returned stop is called:
// redrawn in place on a terminal, one line every two seconds otherwise.
func (d *demo) progress(st *demoStats, recv *receiver.Receiver, total int, start time.Time) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	every := 2 * time.Second
	if d.env.stderrTTY {
		every = 150 * time.Millisecond
	}
	line := func() string {
		n, b := st.records.Load(), st.bytes.Load()
		secs := time.Since(start).Seconds()
		return fmt.Sprintf("  %3.0f%%  %d/%d records  %.1f MB/s  %d credentials  %d alerts raised  %d webhooks received",
			100*float64(n)/float64(max(total, 1)), n, total, float64(b)/1e6/max(secs, 1e-3), st.findings.Load(), st.alertCount.Load(), recv.Count())
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if d.env.stderrTTY {
					fmt.Fprintf(d.env.stderr, "\r%s\n", line())
				} else {
					fmt.Fprintln(d.env.stderr, line())
				}
				return
			case <-t.C:
				if d.env.stderrTTY {
					fmt.Fprintf(d.env.stderr, "\r%s", line())
				} else {
					fmt.Fprintln(d.env.stderr, line())
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (d *demo) summary(st *demoStats, recv *receiver.Receiver, delivered []tokenwatch.Alert, score *scenario.Report, total int, size int64, elapsed time.Duration, reportPath string) {
	w := d.env.stdout
	fmt.Fprintf(w, "\nScanned %d records (%.1f MB) in %s: %d credentials in %d token uses and leaks.\n",
		total, float64(size)/1e6, elapsed.Round(time.Millisecond), st.findings.Load(), st.uses.Load())
	fmt.Fprintf(w, "\nCredentials found, by kind:  %s\n", joinCounts(st.sortedKinds()))
	fmt.Fprintf(w, "Leaked in application logs, by service:  %s\n", joinCounts(st.sortedLeaks()))

	byType := map[string][]tokenwatch.Alert{}
	for _, a := range delivered {
		byType[a.Type] = append(byType[a.Type], a)
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	sort.Strings(types)
	fmt.Fprintf(w, "\nAlerts delivered to the local webhook receiver (%d, signatures verified: %d, rejected: %d):\n", len(delivered), recv.Count(), recv.Rejected.Load())
	for _, t := range types {
		as := byType[t]
		sort.Slice(as, func(i, j int) bool { return as[i].EventTime.Before(as[j].EventTime) })
		fmt.Fprintf(w, "\n  %s (%d, %s)\n", t, len(as), as[0].Severity)
		for i, a := range as {
			if i == 3 {
				fmt.Fprintf(w, "    … and %d more\n", len(as)-3)
				break
			}
			fmt.Fprintf(w, "    • %s\n", a.Summary)
		}
	}
	fmt.Fprintf(w, "\nScored against what the generator planted:\n")
	fmt.Fprintf(w, "  incidents caught: %d/%d   false alerts on benign look-alikes and ordinary traffic: %d\n", score.Detected, score.Incidents, len(score.FalseAlerts))
	fmt.Fprintf(w, "  posture cases reported: %d/%d   unplanned posture findings: %d\n", score.PostureDetected, score.PostureCases, len(score.PostureFalse))
	fmt.Fprintf(w, "  detection delay (event time of alert - first bad use): p50 %s, p99 %s\n", score.DelayP50, score.DelayP99)
	for _, m := range score.Missed {
		fmt.Fprintf(w, "  MISSED %s\n", m.ID)
	}
	for _, a := range score.FalseAlerts {
		fmt.Fprintf(w, "  FALSE %s: %s\n", a.Type, a.Summary)
	}
	fmt.Fprintf(w, "\nReport: %s\nAlerts: %s\nFindings: %s\n", reportPath, filepath.Join(d.out, "alerts.jsonl"), filepath.Join(d.out, "findings.jsonl"))
}

func (d *demo) writeReport(path string, st *demoStats, delivered []tokenwatch.Alert, score *scenario.Report, total int, size int64, elapsed time.Duration) error {
	var leaks, kinds []report.Count
	for _, c := range st.sortedLeaks() {
		leaks = append(leaks, report.Count{Name: c.name, N: c.n})
	}
	for _, c := range st.sortedKinds() {
		kinds = append(kinds, report.Count{Name: c.name, N: c.n})
	}
	incidents := 0
	for _, a := range delivered {
		if a.Severity != tokenwatch.SeverityInfo && a.Severity != tokenwatch.SeverityLow {
			incidents++
		}
	}
	data := report.Data{
		Title:       "tokenwatch demo — token replay caught",
		Subtitle:    fmt.Sprintf("%d records of generated auth and application logs, replayed as live traffic", total),
		GeneratedAt: time.Now(),
		Stats: []report.Stat{
			{Label: "records scanned", Value: commas(int64(total))},
			{Label: "MB of logs", Value: fmt.Sprintf("%.1f", float64(size)/1e6)},
			{Label: "credentials found", Value: commas(st.findings.Load())},
			{Label: "alerts delivered", Value: commas(int64(len(delivered)))},
			{Label: "medium and above", Value: commas(int64(incidents))},
			{Label: "planted incidents caught", Value: fmt.Sprintf("%d/%d", score.Detected, score.Incidents)},
			{Label: "false alerts", Value: commas(int64(len(score.FalseAlerts)))},
			{Label: "pipeline time", Value: elapsed.Round(10 * time.Millisecond).String()},
		},
		Alerts:          delivered,
		LeaksPerService: leaks,
		FindingsPerKind: kinds,
	}
	var buf bytes.Buffer
	if err := report.Write(&buf, data); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func writeAlerts(path string, as []tokenwatch.Alert) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range as {
		if err := enc.Encode(&as[i]); err != nil {
			return err
		}
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// demoStats is the demo's last stage: it counts what went by.
type demoStats struct {
	records, bytes, findings, uses, alertCount atomic.Int64

	mu    sync.Mutex
	kinds map[string]int
	leaks map[string]int
}

func (s *demoStats) Process(_ context.Context, b *tokenwatch.Batch) error {
	s.records.Add(int64(len(b.Records)))
	s.bytes.Add(int64(b.Bytes()))
	s.uses.Add(int64(len(b.Uses)))
	s.alertCount.Add(int64(len(b.Alerts)))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range b.Records {
		for _, f := range b.Records[i].Findings {
			s.findings.Add(1)
			s.kinds[f.Kind]++
		}
	}
	for i := range b.Uses {
		if u := &b.Uses[i]; u.Leak {
			svc := u.Service
			if svc == "" {
				svc = "(unknown service)"
			}
			s.leaks[svc]++
		}
	}
	return nil
}

type nameCount struct {
	name string
	n    int
}

func sortedCounts(m map[string]int) []nameCount {
	out := make([]nameCount, 0, len(m))
	for k, v := range m {
		out = append(out, nameCount{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n > out[j].n || out[i].n == out[j].n && out[i].name < out[j].name })
	return out
}

func (s *demoStats) sortedKinds() []nameCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedCounts(s.kinds)
}

func (s *demoStats) sortedLeaks() []nameCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedCounts(s.leaks)
}

func joinCounts(cs []nameCount) string {
	if len(cs) == 0 {
		return "none"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %s", c.name, commas(int64(c.n)))
	}
	return strings.Join(parts, " · ")
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
