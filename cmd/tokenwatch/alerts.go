package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/alerts"
	"github.com/tokenwatch/tokenwatch/config"
)

func init() {
	register(&command{name: "alerts", summary: "deliver, replay or preview alerts (outbox dispatcher, dead letters, dry run)", run: runAlerts})
}

const alertsUsage = `usage: tokenwatch alerts dispatch --config FILE [--dry-run]
       tokenwatch alerts replay   --config FILE [--from DLQ]
       tokenwatch alerts dry-run  --config FILE [ALERTS.jsonl | -]

dispatch  runs the alert dispatcher: reads the outbox (alerts.outbox: Kafka topic
          with the consumer group alerts.dispatcher.group, or the outbox file)
          and delivers every alert to its routed sinks with retries, circuit
          breakers and dead letters; an outbox message is committed once every
          routed sink has it. Runs until SIGINT/SIGTERM. With --dry-run it
          prints every request instead of sending it and commits nothing.
replay    re-sends the dead letters that are in the dead-letter queue now
          (--from: a topic, or a file when the outbox is a file; default
          alerts.dead_letter), each to the sink that refused it, then exits.
          Those that fail again are dead-lettered anew.
dry-run   prints the requests (method, URL, headers with signatures, body) the
          sinks would receive for the alerts in the file (JSON lines: alerts, or
          outbox envelopes); secrets are shown as [redacted] and the RFC 7009
          token is never opened.

Exit status: 0 ok, 1 replay left dead letters, 2 configuration, usage or I/O error.
`

func runAlerts(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := env.stderr
		if len(args) > 0 {
			w = env.stdout
		}
		fmt.Fprint(w, alertsUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("alerts "+sub, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() { fmt.Fprint(env.stderr, alertsUsage) }
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	dry := fs.Bool("dry-run", false, "dispatch: print requests instead of sending them")
	from := fs.String("from", "", "replay: dead-letter topic (or file), default alerts.dead_letter")
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *cfgPath == "" {
		fmt.Fprintln(env.stderr, "tokenwatch alerts: --config is required")
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return printProblems(env, "alerts", err)
	}
	if err := cfg.Validate(); err != nil {
		return printProblems(env, "alerts", err)
	}
	ac := alertsConfig(cfg)
	switch sub {
	case "dispatch":
		if fs.NArg() > 0 {
			fs.Usage()
			return exitUsage
		}
		return alertsDispatch(ctx, env, ac, *dry)
	case "replay":
		if fs.NArg() > 0 {
			fs.Usage()
			return exitUsage
		}
		return alertsReplay(ctx, env, ac, *from)
	case "dry-run":
		if fs.NArg() > 1 {
			fs.Usage()
			return exitUsage
		}
		in := "-"
		if fs.NArg() == 1 {
			in = fs.Arg(0)
		}
		return alertsDryRun(ctx, env, ac, in)
	}
	fmt.Fprintf(env.stderr, "tokenwatch alerts: unknown subcommand %q\n\n%s", sub, alertsUsage)
	return exitUsage
}

// alertsConfig returns the alerts section with the outbox brokers defaulted to
// the ingest brokers when the outbox names neither brokers nor a file, and the
// dead-letter file defaulted to OUTBOX.dlq for a file outbox.
func alertsConfig(cfg config.Config) alerts.Config {
	ac := cfg.Alerts
	if ac.Outbox.File == "" && len(ac.Outbox.Brokers) == 0 {
		ac.Outbox.Brokers = cfg.Ingest.Kafka.Brokers
	}
	if ac.Outbox.File != "" && ac.DeadLetter.File == "" {
		ac.DeadLetter.File = ac.Outbox.File + ".dlq"
	}
	return ac
}

func userAgent() string { return "tokenwatch/" + version }

// openDeadLetters opens the dead-letter queue of ac: the topic on the outbox
// brokers, or the file.
func openDeadLetters(ac alerts.Config) (alerts.Queue, error) {
	switch {
	case ac.DeadLetter.File != "":
		return alerts.NewFileQueue(ac.DeadLetter.File)
	case len(ac.Outbox.Brokers) > 0 && ac.DeadLetter.Topic != "":
		return alerts.NewKafkaQueue(ac.Outbox.Brokers, ac.DeadLetter.Topic, ac.Outbox.WriteTimeout), nil
	}
	return nil, errors.New("alerts.dead_letter: set topic (with Kafka outbox brokers) or file; undeliverable alerts need a place to go")
}

// openOutboxSource opens the dispatcher's reading side of the outbox.
func openOutboxSource(ac alerts.Config) (alerts.Source, error) {
	switch {
	case ac.Outbox.File != "":
		// The read position belongs to the outbox file it points into, so it
		// sits beside that file (as a dead-letter file's replay cursor does).
		return alerts.NewFileSource(ac.Outbox.File, ac.Outbox.File+".cursor", false)
	case len(ac.Outbox.Brokers) > 0:
		return alerts.NewKafkaSource(ac.Outbox.Brokers, ac.Outbox.Topic, ac.Dispatcher.Group, ac.Dispatcher.SessionTimeout), nil
	}
	return nil, errors.New("alerts.outbox: neither brokers (nor ingest.kafka.brokers) nor file is set; set alerts.outbox.brokers and topic, or alerts.outbox.file")
}

func newDispatcher(ac alerts.Config, env *cliEnv, dlq alerts.Queue, opts ...alerts.DispatcherOption) (*alerts.Dispatcher, error) {
	var sealer *alerts.Sealer
	for _, s := range ac.Sinks {
		if s.Type == alerts.SinkRFC7009 {
			var err error
			if sealer, err = alerts.NewSealerFromConfig(ac, env.getenv); err != nil {
				return nil, err
			}
			break
		}
	}
	opts = append([]alerts.DispatcherOption{alerts.WithUserAgent(userAgent())}, opts...)
	return alerts.NewDispatcher(ac, dlq, sealer, opts...)
}

func alertsDispatch(ctx context.Context, env *cliEnv, ac alerts.Config, dry bool) int {
	src, err := openOutboxSource(ac)
	if err != nil {
		return fail(env, "alerts dispatch", err)
	}
	defer src.Close()
	var opts []alerts.DispatcherOption
	var dlq alerts.Queue
	if dry {
		opts = append(opts, alerts.WithDryRun(env.stdout))
		src = noCommit{src}
	} else {
		if dlq, err = openDeadLetters(ac); err != nil {
			return fail(env, "alerts dispatch", err)
		}
		defer dlq.Close()
	}
	d, err := newDispatcher(ac, env, dlq, opts...)
	if err != nil {
		return fail(env, "alerts dispatch", err)
	}
	slog.Info("tokenwatch alerts dispatch: started", "sinks", len(ac.Sinks), "dry_run", dry)
	if err := d.Run(ctx, src); err != nil && !errors.Is(err, context.Canceled) {
		return fail(env, "alerts dispatch", err)
	}
	slog.Info("tokenwatch alerts dispatch: stopped")
	return exitOK
}

// noCommit leaves the outbox untouched (dry runs).
type noCommit struct{ alerts.Source }

func (noCommit) Commit(context.Context, *alerts.Item) error { return nil }

func alertsReplay(ctx context.Context, env *cliEnv, ac alerts.Config, from string) int {
	var src alerts.Source
	var err error
	fileMode := ac.Outbox.File != "" || ac.DeadLetter.File != ""
	switch {
	case fileMode:
		if from == "" {
			from = ac.DeadLetter.File
		}
		if from == "" {
			return fail(env, "alerts replay", errors.New("--from FILE or alerts.dead_letter.file is required with a file outbox"))
		}
		src, err = alerts.NewFileSource(from, from+".cursor", true)
	default:
		if from == "" {
			from = ac.DeadLetter.Topic
		}
		if len(ac.Outbox.Brokers) == 0 || from == "" {
			return fail(env, "alerts replay", errors.New("--from TOPIC (or alerts.dead_letter.topic) and alerts.outbox.brokers are required"))
		}
		src, err = alerts.NewBoundedKafkaSource(ctx, ac.Outbox.Brokers, from, ac.Dispatcher.Group+"-replay")
	}
	if err != nil {
		return fail(env, "alerts replay", err)
	}
	defer src.Close()
	// New dead letters go where the config says, behind the ones being replayed.
	dlq, err := openDeadLetters(ac)
	if err != nil {
		return fail(env, "alerts replay", err)
	}
	defer dlq.Close()
	counted := &countingQueue{Queue: dlq}
	d, err := newDispatcher(ac, env, counted)
	if err != nil {
		return fail(env, "alerts replay", err)
	}
	n, err := d.Replay(ctx, src)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fail(env, "alerts replay", err)
	}
	fmt.Fprintf(env.stdout, "replayed %d dead letters from %s: %d delivered or skipped, %d dead-lettered again\n", n, from, n-counted.n, counted.n)
	if counted.n > 0 {
		return exitFindings
	}
	return exitOK
}

// countingQueue counts the dead letters written again during a replay.
type countingQueue struct {
	alerts.Queue
	mu sync.Mutex
	n  int
}

func (q *countingQueue) Put(ctx context.Context, msgs []alerts.QueueMessage) error {
	err := q.Queue.Put(ctx, msgs)
	if err == nil {
		q.mu.Lock()
		q.n += len(msgs)
		q.mu.Unlock()
	}
	return err
}

func alertsDryRun(ctx context.Context, env *cliEnv, ac alerts.Config, in string) int {
	var r io.Reader = env.stdin
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return fail(env, "alerts dry-run", fmt.Errorf("open %s: %w", in, err))
		}
		defer f.Close()
		r = f
	}
	d, err := newDispatcher(ac, env, nil, alerts.WithDryRun(env.stdout))
	if err != nil {
		return fail(env, "alerts dry-run", err)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		env2, err := decodeAlertLine(b)
		if err != nil {
			return fail(env, "alerts dry-run", fmt.Errorf("%s:%d: %w", in, line, err))
		}
		if err := d.Deliver(ctx, env2); err != nil {
			return fail(env, "alerts dry-run", err)
		}
	}
	if err := sc.Err(); err != nil {
		return fail(env, "alerts dry-run", fmt.Errorf("read %s: %w", in, err))
	}
	return exitOK
}

// decodeAlertLine reads an outbox envelope ({"alert": …}) or a bare alert.
func decodeAlertLine(b []byte) (*alerts.Envelope, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	var e alerts.Envelope
	if _, ok := probe["alert"]; ok {
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("outbox envelope: %w", err)
		}
	} else if err := json.Unmarshal(b, &e.Alert); err != nil {
		return nil, fmt.Errorf("alert: %w", err)
	}
	if e.Alert.ID == "" || e.Alert.Type == "" {
		return nil, errors.New(`an alert needs at least "id" and "type"`)
	}
	if e.EnqueuedAt.IsZero() {
		e.EnqueuedAt = time.Now().UTC()
	}
	return &e, nil
}

// buildSealStage returns the stage that seals revocable token values right
// after the scanner, or nil when no rfc7009 sink is configured.
func buildSealStage(cfg config.Config, env *cliEnv) (tokenwatch.Stage, error) {
	ac := cfg.Alerts
	hasRevoke := false
	for _, s := range ac.Sinks {
		hasRevoke = hasRevoke || s.Type == alerts.SinkRFC7009
	}
	if !hasRevoke {
		return nil, nil
	}
	sealer, err := alerts.NewSealerFromConfig(ac, env.getenv)
	if err != nil {
		return nil, err
	}
	return alerts.NewSealStage(ac, sealer), nil
}

// buildAlertsStage returns the outbox stage of `tokenwatch run` and, when
// alerts.dispatcher.in_process is set and sinks are configured, starts the
// dispatcher in this process. close flushes pending updates, stops the
// dispatcher (undelivered alerts stay in the outbox for the next start) and
// closes the queues. stage is nil when no outbox is configured and there are no
// sinks.
func buildAlertsStage(ctx context.Context, cfg config.Config, env *cliEnv, dispatcherOpts ...alerts.DispatcherOption) (stage tokenwatch.Stage, closeFn func() error, err error) {
	ac := alertsConfig(cfg)
	if ac.Outbox.File == "" && len(ac.Outbox.Brokers) == 0 {
		if len(ac.Sinks) > 0 {
			return nil, nil, errors.New("alerts.outbox: sinks are configured but no outbox; set alerts.outbox.brokers and topic (or ingest.kafka.brokers), or alerts.outbox.file")
		}
		return nil, func() error { return nil }, nil
	}
	q, err := alerts.OpenQueue(ac.Outbox)
	if err != nil {
		return nil, nil, err
	}
	ob := alerts.NewOutbox(ac, q)
	var stop func() error = func() error { return nil }
	if ac.Dispatcher.InProcess && len(ac.Sinks) > 0 {
		if stop, err = startDispatcher(ctx, ac, env, dispatcherOpts...); err != nil {
			q.Close()
			return nil, nil, err
		}
	}
	// Updates of suppressed alerts go out on time even while no batch arrives.
	tickCtx, stopTick := context.WithCancel(context.WithoutCancel(ctx))
	tickDone := make(chan struct{})
	go func() {
		defer close(tickDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-tickCtx.Done():
				return
			case <-t.C:
				if err := ob.Tick(tickCtx); err != nil && tickCtx.Err() == nil {
					slog.Warn("tokenwatch run: writing due alert updates", "err", err)
				}
			}
		}
	}()
	closeFn = func() error {
		stopTick()
		<-tickDone
		cctx, cancel := context.WithTimeout(context.Background(), ac.Outbox.WriteTimeout)
		defer cancel()
		err := ob.Close(cctx)
		if derr := stop(); err == nil {
			err = derr
		}
		return err
	}
	return ob, closeFn, nil
}

// startDispatcher runs the dispatcher in the background until the returned
// stop is called.
func startDispatcher(ctx context.Context, ac alerts.Config, env *cliEnv, opts ...alerts.DispatcherOption) (stop func() error, err error) {
	src, err := openOutboxSource(ac)
	if err != nil {
		return nil, err
	}
	dlq, err := openDeadLetters(ac)
	if err != nil {
		src.Close()
		return nil, err
	}
	d, err := newDispatcher(ac, env, dlq, opts...)
	if err != nil {
		src.Close()
		dlq.Close()
		return nil, err
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx, src) }()
	slog.Info("tokenwatch run: alert dispatcher started in process", "sinks", len(ac.Sinks))
	return func() error {
		// Let the dispatcher catch up with what this run wrote (bounded), so a
		// run over files delivers its alerts before exiting; whatever is left
		// stays in the outbox for the next start.
		deadline := time.Now().Add(ac.Dispatcher.DrainTimeout)
		for time.Now().Before(deadline) && !(d.InFlight() == 0 && alerts.CaughtUp(src)) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		err := <-done
		src.Close()
		dlq.Close()
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return err
	}, nil
}
