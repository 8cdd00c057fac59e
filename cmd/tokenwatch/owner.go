package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/alerts"
	"github.com/tokenwatch/tokenwatch/config"
	"github.com/tokenwatch/tokenwatch/detect/anomaly"
	"github.com/tokenwatch/tokenwatch/pipeline"
	"github.com/tokenwatch/tokenwatch/policy"
	"github.com/tokenwatch/tokenwatch/telemetry"
)

func init() {
	register(&command{name: "owner", summary: "own the per-token anomaly state of a Kafka scale-out (stage two)", run: runOwner})
}

const ownerUsage = `usage: tokenwatch owner --config FILE [--alerts-file FILE] [--telemetry-listen ADDR]

Stage two of the Kafka scale-out (docs/anomaly.md "Scale-out over Kafka").
'tokenwatch run' processes with anomaly.scale_out.brokers set (stage one)
produce every token use to anomaly.scale_out.uses_topic, keyed by token. Each
owner joins the consumer group anomaly.scale_out.group_id on that topic, owns
the state of the tokens of its partitions (rebuilt from
anomaly.scale_out.changelog_topic when a partition is assigned, so a rebalance
or restart forgets nothing), runs the anomaly engine and hands each batch to:
policy (unless policy.disabled), the ClickHouse store (alerts only: stage one
stored the token events, findings and revocations) and the alerts outbox (with
the in-process dispatcher when alerts.dispatcher.in_process is set). Offsets
are committed after that and after the changelog write: at-least-once, with
deterministic alert ids.

Run as many owners as the uses topic has partitions, or fewer; they may share
the configuration file of stage one.

SIGINT/SIGTERM: stop consuming, finish the batches being processed (bounded
by pipeline.shutdown_timeout; later ones stay uncommitted for the partition's
next owner), flush the outbox, exit 0.

Exit status: 0 stopped cleanly, 2 configuration, usage or I/O error.

Flags:
`

func runOwner(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "owner", ownerUsage)
	cfgPath := fs.String("config", "", "configuration file (YAML; see 'tokenwatch config default')")
	alertsFile := fs.String("alerts-file", "", "use this JSON-lines file as the alerts outbox instead of Kafka; overrides alerts.outbox")
	listen := fs.String("telemetry-listen", "", "host:port of /metrics, /healthz, /readyz; overrides telemetry.listen (\"\" disables), e.g. when stage one runs on the same host with the same file")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	listenSet := false
	fs.Visit(func(f *flag.Flag) { listenSet = listenSet || f.Name == "telemetry-listen" })
	if *cfgPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return printProblems(env, "owner", err)
	}
	if *alertsFile != "" {
		cfg.Alerts.Outbox.File, cfg.Alerts.Outbox.Brokers = *alertsFile, nil
	}
	if listenSet {
		cfg.Telemetry.Listen = *listen
	}
	if err := cfg.Validate(); err != nil {
		return printProblems(env, "owner", err)
	}
	so := cfg.Anomaly.ScaleOut
	if len(so.Brokers) == 0 {
		return fail(env, "owner", errors.New("anomaly.scale_out.brokers: empty; set the Kafka brokers of the uses and changelog topics (an owner only runs in a scale-out)"))
	}

	tel, stopTelemetry, err := startTelemetry(ctx, "owner", cfg.Telemetry)
	if err != nil {
		return fail(env, "owner", err)
	}
	defer stopTelemetry()
	tel.AddCheck("kafka", brokersReachable(so.Brokers))

	eng, err := anomaly.New(cfg.Anomaly)
	if err != nil {
		return fail(env, "owner", fmt.Errorf("anomaly: %w", err))
	}
	sink, names, closeSink, err := buildOwnerSink(ctx, cfg, env, tel)
	if err != nil {
		return fail(env, "owner", err)
	}
	g := &gate{s: sink}
	o, err := anomaly.NewOwner(so, eng, g, anomaly.WithLogger(slog.Default()))
	if err != nil {
		closeSink()
		return fail(env, "owner", err)
	}
	slog.Info("tokenwatch owner: started", "group", so.GroupID, "uses_topic", so.UsesTopic,
		"changelog_topic", so.ChangelogTopic, "sink", names)
	start := time.Now()
	runErr := o.Run(ctx)
	// Run returns as soon as ctx ends; partition goroutines may still be
	// finishing a batch. Let them (bounded), refuse new ones (they stay
	// uncommitted and are processed by the partition's next owner), then
	// flush and close the stages.
	if !g.close(cfg.Pipeline.ShutdownTimeout) {
		slog.Warn("tokenwatch owner: batches still in the sink at shutdown; they are not committed and will be processed again",
			"waited", cfg.Pipeline.ShutdownTimeout)
	}
	closeSink()
	if runErr != nil {
		return fail(env, "owner", runErr)
	}
	slog.Info("tokenwatch owner: stopped", "after", time.Since(start).Round(time.Millisecond))
	return exitOK
}

// buildOwnerSink chains the stages that follow the anomaly engine in
// 'tokenwatch run': policy, store (alerts only) and the alerts outbox. The
// owner calls the sink from one goroutine per partition; every stage here is
// safe for concurrent Process calls (policy.Engine and store.Writer say so;
// alerts.Outbox serialises on its own mutex), so the chain needs no lock.
func buildOwnerSink(ctx context.Context, cfg config.Config, env *cliEnv, tel *telemetry.Server) (sink tokenwatch.Stage, names []string, closeAll func(), err error) {
	var (
		closers []func() error
		stages  []tokenwatch.Stage
	)
	closeStages := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				slog.Warn("tokenwatch owner: closing stage", "err", err)
			}
		}
	}
	defer func() {
		if err != nil {
			closeStages() // not closeAll: an error return sets it to nil
		}
	}()
	add := func(name string, s tokenwatch.Stage) {
		stages = append(stages, s)
		names = append(names, name)
	}

	if !cfg.Policy.Disabled {
		pol, err := policy.New(cfg.Policy)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("policy: %w", err)
		}
		closers = append(closers, pol.Close)
		add("policy", pol)
	}

	var dispatcherOpts []alerts.DispatcherOption
	if cfg.ClickHouse.Enabled() {
		w, closeStore, err := openStore(ctx, cfg.ClickHouse)
		if err != nil {
			return nil, nil, nil, err
		}
		closers = append(closers, closeStore)
		tel.AddCheck("clickhouse", w.Ping)
		add("store", alertsOnly{w})
		dispatcherOpts = append(dispatcherOpts, alerts.WithRecorder(w))
	}

	alertsStage, closeAlerts, err := buildAlertsStage(ctx, cfg, env, dispatcherOpts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("alerts: %w", err)
	}
	closers = append(closers, closeAlerts)
	if alertsStage != nil {
		add("alerts", alertsStage)
	}
	if alertsStage == nil && !cfg.ClickHouse.Enabled() {
		return nil, nil, nil, errors.New("alerts.outbox: the owner has nowhere to put alerts; set alerts.outbox.brokers and topic (or ingest.kafka.brokers), alerts.outbox.file, or clickhouse.addr")
	}
	return pipeline.Chain(stages...), names, closeStages, nil
}

// alertsOnly hands a stage (the store) a view of the batch holding only its
// alerts: in a scale-out, stage one already stored the token events, findings
// and revocations, and every owner partition sees each revocation. The batch
// itself is left whole: the owner writes the changelog from its uses after the
// sink returns.
type alertsOnly struct{ s tokenwatch.Stage }

func (a alertsOnly) Process(ctx context.Context, b *tokenwatch.Batch) error {
	if len(b.Alerts) == 0 {
		return nil
	}
	view := tokenwatch.Batch{Alerts: b.Alerts}
	return a.s.Process(ctx, &view)
}

// errStopping fails a batch that reaches the sink after shutdown began; it is
// not committed, so the partition's next owner processes it.
var errStopping = errors.New("owner is shutting down; batch left for the partition's next owner")

// gate lets the owner wait for the sink calls in flight before closing the
// stages, and refuses calls that start after that.
type gate struct {
	s      tokenwatch.Stage
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *gate) Process(ctx context.Context, b *tokenwatch.Batch) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errStopping
	}
	g.wg.Add(1)
	g.mu.Unlock()
	defer g.wg.Done()
	return g.s.Process(ctx, b)
}

// close refuses new calls and waits up to timeout for the calls in flight;
// it reports whether they all finished.
func (g *gate) close(timeout time.Duration) bool {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
