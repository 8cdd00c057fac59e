package scenario_test

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/bench/scenario"
	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/anomaly"
	"github.com/tokenwatch/tokenwatch/enrich"
	"github.com/tokenwatch/tokenwatch/ingest/parse"
	"github.com/tokenwatch/tokenwatch/pipeline"
	"github.com/tokenwatch/tokenwatch/policy"
)

// collector keeps every alert the stages before it raised.
type collector struct {
	mu     sync.Mutex
	alerts []scenario.Alert
}

func (c *collector) Process(_ context.Context, b *tokenwatch.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range b.Alerts {
		c.alerts = append(c.alerts, scenario.Alert{ID: a.ID, Type: a.Type, Fingerprint: a.Fingerprint, ClientID: a.ClientID, Service: a.Service, EventTime: a.EventTime, Summary: a.Summary})
	}
	return nil
}

// TestScenarioEndToEnd runs the generated scenario through the real stages
// (file sources, scanner, parser, GeoIP, anomaly engine, policy) and scores the
// alerts: every planted incident and posture case must be reported, and no
// benign trap or ordinary token may alert.
func TestScenarioEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cfg := scenario.DefaultConfig()
	cfg.Users = 40
	truth, err := scenario.Generate(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := runScenario(t, dir, cfg.Key)
	got := scenario.Evaluate(truth, r)
	var sb testWriter
	got.Print(&sb)
	t.Logf("\n%s", sb)
	if len(got.Missed) > 0 || len(got.FalseAlerts) > 0 || len(got.Unexpected) > 0 {
		t.Errorf("incidents: %d missed, %d false alerts, %d unexpected types", len(got.Missed), len(got.FalseAlerts), len(got.Unexpected))
	}
	if len(got.PostureMissed) > 0 || len(got.PostureFalse) > 0 {
		t.Errorf("posture: %d missed, %d unplanned", len(got.PostureMissed), len(got.PostureFalse))
	}
	// Replaying the same logs gives the same alerts, ids included.
	again := runScenario(t, dir, cfg.Key)
	if len(again) != len(r) {
		t.Fatalf("replay gave %d alerts, first run %d", len(again), len(r))
	}
	for i := range r {
		if r[i].ID != again[i].ID || r[i].Type != again[i].Type || r[i].Summary != again[i].Summary {
			t.Errorf("alert %d differs on replay: %s %s / %s %s", i, r[i].Type, r[i].ID, again[i].Type, again[i].ID)
		}
	}
}

type testWriter []byte

func (w *testWriter) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }
func (w testWriter) String() string               { return string(w) }

func runScenario(t *testing.T, dir string, key []byte) []scenario.Alert {
	t.Helper()
	ctx := context.Background()
	src, err := scenario.OpenReplay(dir, 512)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	scanner, err := detect.New(detect.WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	pc := parse.DefaultConfig()
	pc.TrustedProxies = append(pc.TrustedProxies, scenario.TrustedProxies...)
	parser, err := parse.New(pc, parse.WithFingerprinter(scanner))
	if err != nil {
		t.Fatal(err)
	}
	geo, err := enrich.Open(enrich.Config{CityDB: filepath.Join(dir, scenario.FileCityDB), ASNDB: filepath.Join(dir, scenario.FileASNDB), CacheSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	defer geo.Close()
	eng, err := anomaly.New(anomaly.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(policy.Config{File: filepath.Join(dir, scenario.FilePolicy), MaxState: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	col := &collector{}
	if err := pipeline.Run(ctx, src, []tokenwatch.Stage{scanner, parser, geo, eng, pol, col}); err != nil {
		t.Fatal(err)
	}
	b := &tokenwatch.Batch{Alerts: pol.Flush(nil)}
	col.Process(ctx, b)
	return col.alerts
}

// BenchmarkPolicyCost measures what the policy checks add to the anomaly
// engine on the scenario's real token uses, run as the pipeline runs them:
// batches of 1024 uses, each batch through the anomaly engine and then
// through the policy engine (so the policy reads uses the anomaly engine just
// touched, as it does in `tokenwatch run`). Each iteration runs every use
// through a fresh anomaly engine and a fresh policy engine (cold: every token
// new), then once more (warm: every token known). The CPU time of each stage
// on each batch is read from the benchmark's own OS thread (clock_gettime
// CLOCK_THREAD_CPUTIME_ID, the goroutine locked to it), so neither other processes nor
// the runtime's background threads count; the figures are reported per use,
// with policy as a percentage of the anomaly engine.
func BenchmarkPolicyCost(b *testing.B) {
	dir := b.TempDir()
	cfg := scenario.DefaultConfig()
	if _, err := scenario.Generate(dir, cfg); err != nil {
		b.Fatal(err)
	}
	uses := collectUses(b, dir, cfg.Key)
	polCfg := policy.Config{File: filepath.Join(dir, scenario.FilePolicy), MaxState: 200_000}
	var anomalyCPU, policyCPU, anomalyWarm, policyWarm time.Duration
	var batches []tokenwatch.Batch
	for i := 0; i < len(uses); i += 1024 {
		batches = append(batches, tokenwatch.Batch{Uses: uses[i:min(i+1024, len(uses))]})
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// run passes every batch through eng then pol and returns each stage's CPU time.
	run := func(eng, pol tokenwatch.Stage) (ta, tp time.Duration) {
		for k := range batches {
			batches[k].Alerts = batches[k].Alerts[:0]
			t0 := threadCPU()
			if err := eng.Process(context.Background(), &batches[k]); err != nil {
				b.Fatal(err)
			}
			t1 := threadCPU()
			if err := pol.Process(context.Background(), &batches[k]); err != nil {
				b.Fatal(err)
			}
			ta, tp = ta+t1-t0, tp+threadCPU()-t1
		}
		return ta, tp
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		eng, err := anomaly.New(anomaly.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		pol, err := policy.New(polCfg)
		if err != nil {
			b.Fatal(err)
		}
		ta, tp := run(eng, pol)
		anomalyCPU, policyCPU = anomalyCPU+ta, policyCPU+tp
		// The same uses again, on warm state: every token is known (a
		// long-running process, where tokens are used many times).
		ta, tp = run(eng, pol)
		anomalyWarm, policyWarm = anomalyWarm+ta, policyWarm+tp
		pol.Close()
	}
	n := float64(b.N * len(uses))
	b.ReportMetric(float64(anomalyCPU.Nanoseconds())/n, "anomaly-cpu-ns/use")
	b.ReportMetric(float64(policyCPU.Nanoseconds())/n, "policy-cpu-ns/use")
	b.ReportMetric(100*float64(policyCPU)/float64(anomalyCPU), "policy-%-of-anomaly")
	b.ReportMetric(100*float64(policyWarm)/float64(anomalyWarm), "warm-policy-%-of-anomaly")
}

// clockThreadCPUTime is CLOCK_THREAD_CPUTIME_ID (Linux).
const clockThreadCPUTime = 3

// threadCPU returns the CPU time of the calling OS thread, in nanoseconds
// (clock_gettime; getrusage's per-thread figures move in scheduler ticks,
// too coarse for one batch).
func threadCPU() time.Duration {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return cpuTime()
	}
	return time.Duration(ts.Nano())
}

// collectUses runs the scenario through scan, parse and GeoIP and keeps the uses.
func collectUses(b *testing.B, dir string, key []byte) []tokenwatch.TokenUse {
	src, err := scenario.OpenReplay(dir, 1024)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	scanner, err := detect.New(detect.WithKey(key))
	if err != nil {
		b.Fatal(err)
	}
	pc := parse.DefaultConfig()
	pc.TrustedProxies = append(pc.TrustedProxies, scenario.TrustedProxies...)
	parser, err := parse.New(pc, parse.WithFingerprinter(scanner))
	if err != nil {
		b.Fatal(err)
	}
	geo, err := enrich.Open(enrich.Config{CityDB: filepath.Join(dir, scenario.FileCityDB), ASNDB: filepath.Join(dir, scenario.FileASNDB), CacheSize: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	defer geo.Close()
	var uses []tokenwatch.TokenUse
	keep := tokenwatch.StageFunc(func(_ context.Context, bt *tokenwatch.Batch) error {
		uses = append(uses, bt.Uses...)
		return nil
	})
	if err := pipeline.Run(context.Background(), src, []tokenwatch.Stage{scanner, parser, geo, keep}); err != nil {
		b.Fatal(err)
	}
	return uses
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
