package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/alerts"
	"github.com/tokenwatch/tokenwatch/config"
	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/anomaly"
	"github.com/tokenwatch/tokenwatch/enrich"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/parse"
	"github.com/tokenwatch/tokenwatch/pipeline"
	"github.com/tokenwatch/tokenwatch/policy"
	"github.com/tokenwatch/tokenwatch/store"
	"github.com/tokenwatch/tokenwatch/telemetry"
)

func init() {
	register(&command{name: "run", summary: "consume Kafka topics, files or stdin and watch every token (the daemon)", run: runRun})
}

const runUsage = `usage: tokenwatch run --config FILE [--findings-file FILE]

Reads the sources of the configuration file (ingest: Kafka topics through a
consumer group, files and directories, stdin), scans every record for
credentials, parses the records that carry one, and hands each batch to the
later stages; a batch is acknowledged (Kafka offsets committed) only after every
stage finished with it: at-least-once delivery.

With anomaly.scale_out.brokers set, run is stage one of the Kafka scale-out:
the repartitioner (token uses and revocations to anomaly.scale_out.uses_topic)
replaces the anomaly and policy stages, and no alerts are written here;
'tokenwatch owner' processes run the engine, policy and alert outbox.

SIGINT/SIGTERM: stop reading, finish and commit the batches already read
(pipeline.shutdown_timeout), exit 0. File and stdin sources end by themselves
(unless a file is followed); run then exits 0 too.

Exit status: 0 finished or stopped cleanly, 2 configuration, usage or I/O error
(including a batch that failed for good; it was not committed and is read again
on the next start).

Flags:
`

func runRun(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "run", runUsage)
	cfgPath := fs.String("config", "", "configuration file (YAML; see 'tokenwatch config default')")
	findings := fs.String("findings-file", "", "write one JSON line per finding to this file (\"-\" for stdout); overrides output.findings_file")
	alertsFile := fs.String("alerts-file", "", "use this JSON-lines file as the alerts outbox instead of Kafka; overrides alerts.outbox")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if *cfgPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return printProblems(env, "run", err)
	}
	if *findings != "" {
		cfg.Output.FindingsFile = *findings
	}
	if *alertsFile != "" {
		cfg.Alerts.Outbox.File, cfg.Alerts.Outbox.Brokers = *alertsFile, nil
	}
	if err := cfg.Validate(); err != nil {
		return printProblems(env, "run", err)
	}
	if !cfg.Ingest.HasSource() {
		return fail(env, "run", errNoSource)
	}

	// Telemetry first, so /healthz answers while the stages start.
	tel, stopTelemetry, err := startTelemetry(ctx, "run", cfg.Telemetry)
	if err != nil {
		return fail(env, "run", err)
	}
	defer stopTelemetry()

	if cfg.Ingest.KafkaEnabled() {
		tel.AddCheck("kafka", brokersReachable(cfg.Ingest.Kafka.Brokers))
	}

	stages, names, closeStages, err := buildStages(ctx, cfg, env, tel)
	if err != nil {
		return fail(env, "run", err)
	}
	defer closeStages()

	src, err := ingest.Open(cfg.Ingest, env.stdin, cfg.Pipeline.InFlight)
	if err != nil {
		return fail(env, "run", err)
	}
	slog.Info("tokenwatch run: started", "sources", cfg.Ingest.String(), "stages", names)
	start := time.Now()
	runErr := pipeline.Run(ctx, src, stages, pipeline.WithConfig(cfg.Pipeline), pipeline.WithStageNames(names...))
	// Close after Run: every batch read has been committed (or failed) by now,
	// and a closed Kafka reader accepts no commits.
	if err := src.Close(); err != nil {
		slog.Warn("tokenwatch run: closing sources", "err", err)
	}
	if runErr != nil {
		return fail(env, "run", runErr)
	}
	slog.Info("tokenwatch run: stopped", "after", time.Since(start).Round(time.Millisecond))
	return exitOK
}

// startTelemetry starts the /metrics, /healthz and /readyz server of command
// cmd; stop shuts it down gracefully.
func startTelemetry(ctx context.Context, cmd string, c telemetry.Config) (tel *telemetry.Server, stop func(), err error) {
	tel = telemetry.New(c, slog.Default())
	telemetry.SetBuildInfo(version)
	if err := tel.Start(); err != nil {
		return nil, nil, err
	}
	return tel, func() {
		if err := tel.Shutdown(context.WithoutCancel(ctx)); err != nil {
			slog.Warn("tokenwatch "+cmd+": telemetry shutdown", "err", err)
		}
	}, nil
}

var errNoSource = errors.New("ingest: no source configured; set ingest.kafka (brokers and topics), ingest.files or ingest.stdin.enabled")

// buildStages builds the pipeline's stages in order. Each later issue adds its
// stage at its marked place; the order is the data flow of DESIGN.md, and every
// stage that must hold a batch's effects durably (store, alerts outbox) comes
// before the commit that Run does after the last stage.
func buildStages(ctx context.Context, cfg config.Config, env *cliEnv, tel *telemetry.Server) (stages []tokenwatch.Stage, names []string, closeAll func(), err error) {
	var closers []func() error
	closeStages := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				slog.Warn("tokenwatch run: closing stage", "err", err)
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

	// 1. scan (detect): credentials in Record.Raw -> Record.Findings.
	key, from, err := detect.LoadKey(cfg.Detect.FingerprintKey, cfg.Detect.KeyFile, env.getenv)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fingerprint key: %w", err)
	}
	slog.Info("tokenwatch run: fingerprint key", "from", from)
	scanner, err := detect.New(cfg.Detect.Options(key)...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("scanner: %w", err)
	}
	add("scan", scanner)

	// 1b. seal (alerts): token values an rfc7009 sink may revoke -> Finding.Sealed.
	sealStage, err := buildSealStage(cfg, env)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("alerts: %w", err)
	}
	if sealStage != nil {
		add("seal", sealStage)
	}

	// 2. parse (ingest/parse): fields of records with findings -> b.Uses;
	//    revocation records -> b.Revocations.
	parser, err := parse.New(cfg.Parse, parse.WithFingerprinter(scanner))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parser: %w", err)
	}
	add("parse", parser)

	// 3. enrich: GeoIP/ASN of b.Uses[i].IP -> b.Uses[i].Geo.
	geo, err := enrich.Open(cfg.Enrich)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("enrich: %w", err)
	}
	closers = append(closers, geo.Close)
	add("enrich", geo)

	// 4. anomaly (detect/anomaly): per-token state -> b.Alerts. With
	//    anomaly.scale_out.brokers set, this process is stage one: the uses
	//    go to the uses topic and `tokenwatch owner` processes run the engine,
	//    policy and alerts (docs/anomaly.md "Scale-out over Kafka").
	scaleOut := len(cfg.Anomaly.ScaleOut.Brokers) > 0
	var persistState tokenwatch.Stage
	if scaleOut {
		rp, err := anomaly.NewRepartitioner(ctx, cfg.Anomaly.ScaleOut)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("anomaly scale-out: %w", err)
		}
		closers = append(closers, rp.Close)
		add("repartition", rp)
	} else {
		eng, err := anomaly.New(cfg.Anomaly)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("anomaly: %w", err)
		}
		// The state is kept in a compacted topic when Kafka is at hand
		// (anomaly.state_log), so a restart or kill -9 forgets no recent use.
		sl := cfg.Anomaly.StateLog // persisted by persistState, after the outbox
		if len(sl.Brokers) == 0 {
			sl.Brokers = cfg.Ingest.Kafka.Brokers
		}
		if sl.Topic == "" {
			sl.Topic = cfg.Ingest.Kafka.GroupID + "-anomaly-state"
		}
		if sl.Disabled || len(sl.Brokers) == 0 {
			add("anomaly", eng)
		} else {
			st, err := anomaly.NewStateLog(ctx, sl, eng, slog.Default())
			if err != nil {
				return nil, nil, nil, err
			}
			closers = append(closers, st.Close)
			if err := st.Restore(ctx); err != nil {
				return nil, nil, nil, fmt.Errorf("anomaly: restore state: %w", err)
			}
			add("anomaly", st)
			persistState = st.Persist()
		}
	}

	// 4b. policy: token-hygiene findings -> b.Alerts (in the owners when scaled out).
	//     Its state is kept in a compacted topic when Kafka is at hand
	//     (policy.state_log), persisted by persistPolicy, after the outbox.
	var persistPolicy tokenwatch.Stage
	if !cfg.Policy.Disabled && !scaleOut {
		pol, err := policy.New(cfg.Policy)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("policy: %w", err)
		}
		closers = append(closers, pol.Close)
		if sl := cfg.Policy.StateLog.WithDefaults(cfg.Ingest.Kafka.Brokers, cfg.Ingest.Kafka.GroupID); sl.Enabled() {
			st, err := policy.NewStateLog(ctx, sl, pol, slog.Default())
			if err != nil {
				return nil, nil, nil, err
			}
			closers = append(closers, st.Close)
			if err := st.Restore(ctx); err != nil {
				return nil, nil, nil, fmt.Errorf("policy: restore state: %w", err)
			}
			add("policy", st)
			persistPolicy = st.Persist()
		} else {
			add("policy", pol)
		}
	}

	// 5. store: ClickHouse rows for findings, token events, alerts, revocations.
	//    The store also records the dispatcher's deliveries (deliveries table).
	var dispatcherOpts []alerts.DispatcherOption
	if cfg.ClickHouse.Enabled() {
		w, closeStore, err := openStore(ctx, cfg.ClickHouse)
		if err != nil {
			return nil, nil, nil, err
		}
		closers = append(closers, closeStore)
		tel.AddCheck("clickhouse", w.Ping)
		add("store", w)
		dispatcherOpts = append(dispatcherOpts, alerts.WithRecorder(w))
	}

	// 6. alerts: b.Alerts into the durable outbox (delivery is asynchronous).
	//    Stage one of a scale-out raises no alerts: the owners write them.
	if !scaleOut {
		alertsStage, closeAlerts, err := buildAlertsStage(ctx, cfg, env, dispatcherOpts...)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("alerts: %w", err)
		}
		closers = append(closers, closeAlerts)
		if alertsStage != nil {
			add("alerts", alertsStage)
		}
	}

	// 6b. anomaly state: the batch's token states to anomaly.state_log, once
	//     its alerts are durable (see anomaly.StateLog).
	if persistState != nil {
		add("anomaly-state", persistState)
	}
	// 6c. policy state: what the batch changed to policy.state_log, likewise.
	if persistPolicy != nil {
		add("policy-state", persistPolicy)
	}

	// 7. sink: output.findings_file, one JSON line per finding.
	sink, err := pipeline.OpenSink(cfg.Output, env.stdout)
	if err != nil {
		return nil, nil, nil, err
	}
	if sink != nil {
		closers = append(closers, sink.Close)
		add("sink", sink)
	}
	_ = ctx
	return stages, names, closeStages, nil
}

// printProblems prints a configuration error as one mistake per line.
func printProblems(env *cliEnv, cmd string, err error) int {
	for _, p := range config.Problems(err) {
		fmt.Fprintf(env.stderr, "tokenwatch %s: %s\n", cmd, p)
	}
	return exitUsage
}

// openStore connects to ClickHouse, applies pending migrations when
// clickhouse.migrate is set, and returns the writer stage and its closer
// (flush buffered rows, then close the connection).
func openStore(ctx context.Context, cfg store.Config) (*store.Writer, func() error, error) {
	conn, err := store.Dial(cfg)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Migrate {
		// The server may still be starting (docker compose, a restart):
		// retry for up to two minutes before giving up.
		mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		var res store.MigrateResult
		for wait := time.Second; ; wait = min(2*wait, 15*time.Second) {
			res, err = store.Migrate(mctx, store.NativeExecer{Conn: conn}, cfg)
			if err == nil || mctx.Err() != nil {
				break
			}
			slog.Warn("tokenwatch run: clickhouse migrations failed; retrying", "retry_in", wait, "err", err)
			select {
			case <-mctx.Done():
			case <-time.After(wait):
			}
		}
		cancel()
		if err != nil {
			_ = conn.Close()
			return nil, nil, fmt.Errorf("clickhouse migrations (set clickhouse.migrate: false to skip): %w", err)
		}
		slog.Info("tokenwatch run: clickhouse schema ready", "database", cfg.Database, "applied", res.Applied)
	}
	w := store.NewWriter(cfg, conn, slog.Default())
	return w, func() error {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.WriteTimeout)
		defer cancel()
		return errors.Join(w.Close(cctx), conn.Close())
	}, nil
}

// brokersReachable is the kafka readiness check: at least one broker accepts
// a TCP connection.
func brokersReachable(brokers []string) telemetry.Check {
	return func(ctx context.Context) error {
		var d net.Dialer
		var errs []error
		for _, b := range brokers {
			c, err := d.DialContext(ctx, "tcp", b)
			if err == nil {
				return c.Close()
			}
			errs = append(errs, err)
		}
		return fmt.Errorf("no kafka broker reachable: %w", errors.Join(errs...))
	}
}
