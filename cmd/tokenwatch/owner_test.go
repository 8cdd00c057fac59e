package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/config"
)

func TestOwnerUsage(t *testing.T) {
	// A broker that refuses connections at once: 127.0.0.1 port 1.
	scaleOut := "anomaly:\n  scale_out:\n    brokers: [\"127.0.0.1:1\"]\n"
	for name, tc := range map[string]struct {
		args     []string
		want     int
		wantText string
	}{
		"help":             {[]string{"owner", "--help"}, exitOK, "usage: tokenwatch owner --config FILE"},
		"help command":     {[]string{"help", "owner"}, exitOK, "Stage two of the Kafka scale-out"},
		"no config":        {[]string{"owner"}, exitUsage, "usage: tokenwatch owner"},
		"extra argument":   {[]string{"owner", "--config", "x.yaml", "extra"}, exitUsage, "usage: tokenwatch owner"},
		"missing file":     {[]string{"owner", "--config", filepath.Join(t.TempDir(), "none.yaml")}, exitUsage, "none.yaml"},
		"scale-out is off": {[]string{"owner", "--config", writeConfig(t, "")}, exitUsage, "anomaly.scale_out.brokers: empty"},
		"invalid scale-out": {[]string{"owner", "--config", writeConfig(t, scaleOut+"    batch_size: 0\n")}, exitUsage,
			"anomaly.scale_out.batch_size"},
		"nowhere for alerts": {[]string{"owner", "--config", writeConfig(t, scaleOut)}, exitUsage, "the owner has nowhere to put alerts"},
		"telemetry-listen overrides the file": {[]string{"owner", "--config", writeConfig(t, scaleOut), "--telemetry-listen", "no-port"},
			exitUsage, "telemetry.listen"},
		"brokers down": {[]string{"owner", "--config", writeConfig(t, scaleOut), "--alerts-file", filepath.Join(t.TempDir(), "a.jsonl")},
			exitUsage, "anomaly owner"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCmd(t, nil, nil, tc.args...)
			code, stdout, stderr := r.code, r.stdout, r.stderr
			if code != tc.want {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.want, stderr)
			}
			if !strings.Contains(stdout+stderr, tc.wantText) {
				t.Errorf("output lacks %q:\nstdout: %s\nstderr: %s", tc.wantText, stdout, stderr)
			}
		})
	}
}

// Stage one with scale-out on needs the uses topic: an unreachable broker is a
// startup error that names the section.
func TestRunScaleOutBrokersDown(t *testing.T) {
	cfg := writeConfig(t, "ingest:\n  stdin:\n    enabled: true\nanomaly:\n  scale_out:\n    brokers: [\"127.0.0.1:1\"]\n")
	r := runCmd(t, nil, nil, "run", "--config", cfg)
	code, stderr := r.code, r.stderr
	if code != exitUsage || !strings.Contains(stderr, "anomaly scale-out") {
		t.Fatalf("exit %d, want %d with an anomaly scale-out error; stderr:\n%s", code, exitUsage, stderr)
	}
}

func TestBuildOwnerSink(t *testing.T) {
	for name, tc := range map[string]struct {
		policyOff bool
		outbox    bool
		want      []string
		wantErr   string
	}{
		"policy and outbox":   {outbox: true, want: []string{"policy", "alerts"}},
		"outbox only":         {policyOff: true, outbox: true, want: []string{"alerts"}},
		"no outbox, no store": {wantErr: "nowhere to put alerts"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := config.DefaultConfig()
			cfg.Policy.Disabled = tc.policyOff
			if tc.outbox {
				cfg.Alerts.Outbox.File = filepath.Join(t.TempDir(), "outbox.jsonl")
			}
			env := &cliEnv{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}
			sink, names, closeAll, err := buildOwnerSink(context.Background(), cfg, env, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closeAll()
			if !slices.Equal(names, tc.want) {
				t.Errorf("sink stages %v, want %v", names, tc.want)
			}
			if err := sink.Process(context.Background(), &tokenwatch.Batch{}); err != nil {
				t.Errorf("empty batch: %v", err)
			}
		})
	}
}

func TestAlertsOnly(t *testing.T) {
	var got tokenwatch.Batch
	calls := 0
	s := alertsOnly{tokenwatch.StageFunc(func(_ context.Context, b *tokenwatch.Batch) error {
		calls++
		got = *b
		return nil
	})}
	b := &tokenwatch.Batch{
		Records:     make([]tokenwatch.Record, 2),
		Uses:        make([]tokenwatch.TokenUse, 3),
		Revocations: make([]tokenwatch.Revocation, 1),
	}
	if err := s.Process(context.Background(), b); err != nil || calls != 0 {
		t.Fatalf("batch without alerts: err %v, %d calls; want no call", err, calls)
	}
	b.Alerts = []tokenwatch.Alert{{ID: "a1"}, {ID: "a2"}}
	if err := s.Process(context.Background(), b); err != nil || calls != 1 {
		t.Fatalf("err %v, %d calls", err, calls)
	}
	if len(got.Alerts) != 2 || len(got.Uses)+len(got.Records)+len(got.Revocations) != 0 {
		t.Errorf("the wrapped stage saw %d alerts, %d uses, %d records, %d revocations; want alerts only",
			len(got.Alerts), len(got.Uses), len(got.Records), len(got.Revocations))
	}
	// The owner writes the changelog from b.Uses after the sink: b stays whole.
	if len(b.Uses) != 3 || len(b.Records) != 2 || len(b.Revocations) != 1 || len(b.Alerts) != 2 {
		t.Errorf("the batch was changed: %d uses, %d records, %d revocations, %d alerts",
			len(b.Uses), len(b.Records), len(b.Revocations), len(b.Alerts))
	}
}

func TestGate(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	g := &gate{s: tokenwatch.StageFunc(func(context.Context, *tokenwatch.Batch) error {
		entered <- struct{}{}
		<-release
		return nil
	})}
	done := make(chan error, 1)
	go func() { done <- g.Process(context.Background(), &tokenwatch.Batch{}) }()
	<-entered
	closed := make(chan bool, 1)
	go func() { closed <- g.close(time.Minute) }()
	// Once closing, new calls are refused without reaching the stage.
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		c := g.closed
		g.mu.Unlock()
		if c {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gate never closed")
		}
		time.Sleep(time.Millisecond)
	}
	if err := g.Process(context.Background(), &tokenwatch.Batch{}); !errors.Is(err, errStopping) {
		t.Fatalf("call after close: %v, want errStopping", err)
	}
	select {
	case <-closed:
		t.Fatal("close returned while a call was in flight")
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !<-closed {
		t.Error("close reported calls still in flight after they finished")
	}

	// A call that never finishes: close gives up after its timeout.
	in := make(chan struct{})
	stuck := &gate{s: tokenwatch.StageFunc(func(ctx context.Context, _ *tokenwatch.Batch) error {
		close(in)
		<-ctx.Done()
		return ctx.Err()
	})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = stuck.Process(ctx, &tokenwatch.Batch{}) }()
	<-in
	if stuck.close(10 * time.Millisecond) {
		t.Error("close reported success with a call stuck in the sink")
	}
}
