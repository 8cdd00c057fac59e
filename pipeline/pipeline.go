package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/ingest"
)

// Option configures Run.
type Option func(*options)

type options struct {
	cfg   Config
	names []string
	sleep func(ctx context.Context, d time.Duration) bool
}

// WithConfig sets the pipeline configuration (default DefaultConfig()).
func WithConfig(c Config) Option { return func(o *options) { o.cfg = c } }

// WithStageNames names the stages for logs and the stage_seconds metric, in
// the order of the stages slice (default: the stage's Go type).
func WithStageNames(names ...string) Option { return func(o *options) { o.names = names } }

// withSleep replaces the backoff sleep (tests).
func withSleep(f func(ctx context.Context, d time.Duration) bool) Option {
	return func(o *options) { o.sleep = f }
}

// Permanent marks err as not worth retrying: the pipeline stops at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsRetryable reports whether a stage or commit error is retried: every error
// is, except those wrapped with Permanent, those whose Retryable() method says
// false, and context cancellation.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var p *permanentError
	if errors.As(err, &p) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	return true
}

type item struct {
	b   *tokenwatch.Batch
	err error
}

// Run reads batches from src, passes each through stages in order and commits
// it to src, until src ends (io.EOF), ctx is done, or a batch fails for good.
//
// While one batch is in the stages, up to Config.InFlight more are read ahead
// and the previous one may be committing; batches are processed and committed
// strictly in the order src returned them, so a commit never covers a record
// that has not been through every stage.
// Batches are pooled: a committed batch is Reset and reused.
//
// A stage error is retried on the same batch from the failing stage on, with
// exponential backoff, up to Config.Retry.MaxAttempts attempts, unless it is not
// retryable (see IsRetryable). A stage that fails must leave the batch so that
// a second Process call on it is correct. When a batch fails for good, Run stops
// without committing it or any later batch and returns the error: a restart
// reads them again.
//
// When ctx is done, Run stops reading, finishes and commits the batches already
// read (within Config.ShutdownTimeout), and returns nil. The stages and Commit
// see a context that outlives ctx by that timeout. Run does not close src.
func Run(ctx context.Context, src ingest.Source, stages []tokenwatch.Stage, opts ...Option) error {
	o := options{cfg: DefaultConfig(), sleep: sleepCtx}
	for _, f := range opts {
		f(&o)
	}
	if err := o.cfg.Validate(); err != nil {
		return fmt.Errorf("pipeline config: %w", err)
	}
	r := &runner{o: o, src: src, stages: stages}
	r.names = make([]string, len(stages))
	r.timers = make([]prometheus.Observer, len(stages))
	for i, s := range stages {
		if i < len(o.names) && o.names[i] != "" {
			r.names[i] = o.names[i]
		} else {
			r.names[i] = strings.TrimPrefix(fmt.Sprintf("%T", s), "*")
		}
		r.timers[i] = metricStageSeconds.WithLabelValues(r.names[i])
	}
	for k := range r.kinds {
		r.kinds[k] = metricRecords.WithLabelValues(tokenwatch.SourceKind(k).String())
	}
	return r.run(ctx)
}

type runner struct {
	o      options
	src    ingest.Source
	stages []tokenwatch.Stage
	names  []string
	timers []prometheus.Observer
	kinds  [3]prometheus.Counter
}

func (r *runner) run(ctx context.Context) error {
	// work outlives ctx by the shutdown timeout so that batches already read
	// are finished and committed after SIGINT/SIGTERM.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopTimer := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(r.o.cfg.ShutdownTimeout, cancelWork)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stopTimer()

	readCtx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	n := r.o.cfg.InFlight
	// Batches: n read ahead, one in the stages, one being committed.
	free := make(chan *tokenwatch.Batch, n+2)
	for range n + 2 {
		free <- &tokenwatch.Batch{}
	}

	// Reader: Next into free batches, handed to the stages in order.
	ready := make(chan item, n)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(ready)
		for {
			var b *tokenwatch.Batch
			select {
			case b = <-free:
			case <-readCtx.Done():
				return
			}
			b.Reset()
			err := r.src.Next(readCtx, b)
			if err == nil && len(b.Records) == 0 {
				panic("BUG: Source.Next returned an empty batch without an error")
			}
			if err != nil {
				ready <- item{err: err}
				return
			}
			metricInFlight.Inc()
			// Always delivered, even after ctx is done: the records were read
			// and (for stdin) cannot be read again.
			ready <- item{b: b}
		}
	}()

	// Committer: commits processed batches in order, so the stages can work on
	// the next batch during a commit's round trip. After a failed commit no
	// later batch is committed.
	type done struct {
		b     *tokenwatch.Batch
		start time.Time
	}
	commitQ := make(chan done, n+1)
	commitErr := make(chan error, 1)
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		failed := false
		for d := range commitQ {
			if !failed {
				if err := r.commit(work, d.b, d.start); err != nil {
					failed = true
					metricFailed.Inc()
					commitErr <- err
					cancelRead()
				}
			}
			metricInFlight.Dec()
			free <- d.b
		}
	}()

	var failure error
	for it := range ready {
		if failure == nil {
			select {
			case failure = <-commitErr:
			default:
			}
		}
		if failure != nil {
			if it.b != nil {
				metricInFlight.Dec()
			}
			continue // drain: uncommitted, read again after a restart
		}
		if it.err != nil {
			switch {
			case errors.Is(it.err, io.EOF):
			case ctx.Err() != nil && errors.Is(it.err, ctx.Err()):
			default:
				failure = fmt.Errorf("read source: %w", it.err)
				cancelRead()
			}
			continue
		}
		start := time.Now()
		if err := r.stagesOn(work, it.b); err != nil {
			metricFailed.Inc()
			failure = err
			cancelRead()
			metricInFlight.Dec()
			free <- it.b
			continue
		}
		commitQ <- done{it.b, start}
	}
	close(commitQ)
	<-committerDone
	<-readerDone
	if failure == nil {
		select {
		case failure = <-commitErr:
		default:
		}
	}
	if failure != nil {
		if ctx.Err() != nil && work.Err() != nil {
			return fmt.Errorf("shutdown timeout %s passed with batches unfinished (they are not committed and will be read again): %w", r.o.cfg.ShutdownTimeout, failure)
		}
		return failure
	}
	return nil
}

// stagesOn runs b through every stage, retrying a failing stage.
func (r *runner) stagesOn(ctx context.Context, b *tokenwatch.Batch) error {
	for i, s := range r.stages {
		err := r.retry(ctx, "stage", func() error {
			t := time.Now()
			err := s.Process(ctx, b)
			r.timers[i].Observe(time.Since(t).Seconds())
			return err
		}, r.names[i])
		if err != nil {
			return fmt.Errorf("stage %s: %w", r.names[i], err)
		}
	}
	return nil
}

// commit acknowledges b to the source (retrying) and counts it.
func (r *runner) commit(ctx context.Context, b *tokenwatch.Batch, start time.Time) error {
	if err := r.retry(ctx, "commit", func() error { return r.src.Commit(ctx, b) }, "commit"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	metricBatchSeconds.Observe(time.Since(start).Seconds())
	var counts [3]int
	for i := range b.Records {
		if k := b.Records[i].Kind; int(k) < len(counts) {
			counts[k]++
		}
	}
	for k, c := range counts {
		if c > 0 {
			r.kinds[k].Add(float64(c))
		}
	}
	metricBytes.Add(float64(b.Bytes()))
	metricBatches.Inc()
	return nil
}

func (r *runner) retry(ctx context.Context, step string, f func() error, name string) error {
	backoff := r.o.cfg.Retry.InitialBackoff
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		if !IsRetryable(err) || attempt >= r.o.cfg.Retry.MaxAttempts || ctx.Err() != nil {
			return err
		}
		slog.Warn("pipeline: retrying batch", "step", step, "name", name, "attempt", attempt, "backoff", backoff, "err", err)
		metricRetries.WithLabelValues(step).Inc()
		if !r.o.sleep(ctx, backoff) {
			return fmt.Errorf("%w (gave up retrying: %w)", err, ctx.Err())
		}
		backoff = min(2*backoff, r.o.cfg.Retry.MaxBackoff)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
