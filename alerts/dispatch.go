package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Dispatcher delivers outbox envelopes to their routed sinks.
//
// For each envelope it delivers to every routed sink concurrently; a sink gets
// retries with exponential backoff and jitter (a Retry-After from the receiver
// wins, capped by retry.max_retry_after), behind a per-sink circuit breaker,
// until it succeeds, answers with a permanent error, or retry.max_attempts /
// retry.max_age is reached; then the envelope goes to the dead-letter queue
// with the last error. Run commits an outbox message only when every routed sink
// has it delivered, dead-lettered or skipped, and in partition order, so a
// restart resumes at the first message not fully handled.
type Dispatcher struct {
	cfg      Config
	router   *Router
	sinks    map[string]*sinkState
	client   *http.Client
	dlq      Queue
	recorder DeliveryRecorder
	state    *stateStore
	log      *slog.Logger
	ua       string
	now      func() time.Time
	dryOut   io.Writer
	dryMu    sync.Mutex
	inflight atomic.Int64
}

// InFlight returns the number of outbox messages fetched and not yet finished.
func (d *Dispatcher) InFlight() int { return int(d.inflight.Load()) }

// CaughtUp reports whether src has nothing more to read right now (a file
// source at the end of its file, a Kafka source with no lag). Sources that
// cannot tell report true.
func CaughtUp(src Source) bool {
	if c, ok := src.(interface{ caughtUp() bool }); ok {
		return c.caughtUp()
	}
	return true
}

type sinkState struct {
	s    sink
	cfg  *SinkConfig
	hash string
	br   *breaker
}

// DispatcherOption configures a Dispatcher.
type DispatcherOption func(*Dispatcher)

// withClock replaces the clock (tests).
func withClock(now func() time.Time) DispatcherOption { return func(d *Dispatcher) { d.now = now } }

// WithRecorder sets the DeliveryRecorder.
func WithRecorder(r DeliveryRecorder) DispatcherOption { return func(d *Dispatcher) { d.recorder = r } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) DispatcherOption { return func(d *Dispatcher) { d.log = l } }

// WithUserAgent sets the User-Agent of every request ("tokenwatch/<version>").
func WithUserAgent(ua string) DispatcherOption { return func(d *Dispatcher) { d.ua = ua } }

// WithHTTPClient replaces the HTTP client (its redirect policy should refuse
// redirects, as the default one does).
func WithHTTPClient(c *http.Client) DispatcherOption { return func(d *Dispatcher) { d.client = c } }

// WithDryRun makes the dispatcher print each request it would send to w instead
// of sending it; secrets stay unprinted (the RFC 7009 token is never opened).
func WithDryRun(w io.Writer) DispatcherOption { return func(d *Dispatcher) { d.dryOut = w } }

// NewDispatcher builds the sinks of cfg. dlq receives dead letters; sealer opens
// tokens for rfc7009 sinks (nil when there are none).
func NewDispatcher(cfg Config, dlq Queue, sealer *Sealer, opts ...DispatcherOption) (*Dispatcher, error) {
	d := &Dispatcher{
		cfg:    cfg,
		router: NewRouter(cfg),
		sinks:  map[string]*sinkState{},
		client: newHTTPClient(),
		dlq:    dlq,
		log:    slog.Default(),
		ua:     DefaultUserAgent,
		now:    time.Now,
	}
	for _, o := range opts {
		o(d)
	}
	st, err := openState(cfg.Dispatcher.StateFile)
	if err != nil {
		return nil, err
	}
	d.state = st
	for i := range cfg.Sinks {
		sc := sinkDefaults(cfg.Sinks[i])
		var s sink
		switch sc.Type {
		case SinkWebhook:
			s, err = newWebhookSink(sc)
		case SinkRFC7009:
			s, err = newRevokeSink(sc, sealer)
		case SinkSSF:
			s, err = newSSFSink(sc)
		default:
			err = fmt.Errorf("alerts.sinks[%d].type: %q is not a sink type", i, sc.Type)
		}
		if err != nil {
			return nil, err
		}
		d.sinks[sc.Name] = &sinkState{s: s, cfg: s.config(), hash: sinkHash(s.config()), br: newBreaker(sc.Name, cfg.CircuitBreaker)}
	}
	return d, nil
}

// Deliver delivers env to every sink it is routed to and returns when each has
// it delivered, skipped or dead-lettered. It returns an error only when ctx ends
// first or a dead letter cannot be written: then the envelope must be retried.
func (d *Dispatcher) Deliver(ctx context.Context, env *Envelope) error {
	return d.deliverTo(ctx, env, d.router.Route(&env.Alert), 0)
}

func (d *Dispatcher) deliverTo(ctx context.Context, env *Envelope, sinks []string, priorAttempts int) error {
	if len(sinks) == 1 || d.dryOut != nil {
		// Dry runs print in routing order, one sink after the other.
		var errs []error
		for _, name := range sinks {
			errs = append(errs, d.deliverSink(ctx, env, name, priorAttempts))
		}
		return errors.Join(errs...)
	}
	errs := make([]error, len(sinks))
	var wg sync.WaitGroup
	for i, name := range sinks {
		wg.Go(func() { errs[i] = d.deliverSink(ctx, env, name, priorAttempts) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deliverSink runs the retry loop of one (envelope, sink).
func (d *Dispatcher) deliverSink(ctx context.Context, env *Envelope, name string, priorAttempts int) error {
	a := &env.Alert
	id := WebhookID(a.ID, a.Update, name)
	st, ok := d.sinks[name]
	if !ok {
		return d.deadLetter(ctx, env, name, id, "sink is not configured", 0, priorAttempts)
	}
	log := d.log.With("alert", a.ID, "update", a.Update, "sink", name, "webhook_id", id)
	if dis, ok := d.state.disabled(st.hash); ok {
		d.finish(ctx, env, st, id, OutcomeDisabled, 0, priorAttempts, "")
		return d.deadLetter(ctx, env, name, id, fmt.Sprintf("endpoint disabled since %s: %s; change the sink's configuration to re-enable it", dis.At.Format(time.RFC3339), dis.Reason), 0, priorAttempts)
	}
	if ok, why := st.s.accepts(env); !ok {
		if d.dryOut != nil {
			d.dryMu.Lock()
			fmt.Fprintf(d.dryOut, "# sink %s (%s), alert %s update %d: skipped: %s\n\n", name, st.cfg.Type, a.ID, a.Update, why)
			d.dryMu.Unlock()
			return nil
		}
		d.finish(ctx, env, st, id, OutcomeSkipped, 0, priorAttempts, why)
		return nil
	}
	if d.dryOut != nil {
		return d.printDry(env, st, id)
	}
	var last result
	attempts := priorAttempts
	for {
		now := d.now()
		if env.TokenExp != nil && st.cfg.Type == SinkRFC7009 && !now.Before(*env.TokenExp) {
			// The token expired: revoking it is moot, and its sealed value is dropped.
			d.finish(ctx, env, st, id, OutcomeExpired, 0, attempts, "token expired at "+env.TokenExp.Format(time.RFC3339))
			return nil
		}
		if attempts >= d.cfg.Retry.MaxAttempts+priorAttempts || (attempts > priorAttempts && now.Sub(env.EnqueuedAt) > d.cfg.Retry.MaxAge) {
			d.finish(ctx, env, st, id, OutcomeDead, last.Status, attempts, last.Err)
			return d.deadLetter(ctx, env, name, id, fmt.Sprintf("gave up after %d attempts: %s", attempts, last.Err), last.Status, attempts)
		}
		if ok, at := st.br.allow(now); !ok {
			if err := d.sleep(ctx, at.Sub(now)); err != nil {
				return err
			}
			continue
		}
		attempts++
		last = d.attempt(ctx, st, env, id)
		if ctx.Err() != nil && last.Outcome != OutcomeDelivered {
			st.br.abort()
			return ctx.Err()
		}
		st.br.record(last.Outcome != OutcomeRetry, d.now())
		deliveriesTotal.WithLabelValues(name, last.Outcome).Inc()
		switch last.Outcome {
		case OutcomeDelivered:
			deliverySeconds.WithLabelValues(name).Observe(d.now().Sub(env.EnqueuedAt).Seconds())
			d.finish(ctx, env, st, id, OutcomeDelivered, last.Status, attempts, "")
			return nil
		case OutcomeGone:
			reason := fmt.Sprintf("HTTP 410 Gone from %s", redactURL(st.cfg.URL))
			if err := d.state.disable(st.hash, disabledEndpoint{Sink: name, At: d.now().UTC(), Reason: reason}); err != nil {
				log.Error("persist disabled endpoint", "err", err)
			}
			log.Warn("endpoint answered 410 Gone: disabled until its configuration changes")
			d.finish(ctx, env, st, id, OutcomeGone, last.Status, attempts, last.Err)
			return d.deadLetter(ctx, env, name, id, last.Err, last.Status, attempts)
		case OutcomeDead:
			log.Warn("delivery refused: dead-lettered", "status", last.Status, "err", last.Err)
			d.finish(ctx, env, st, id, OutcomeDead, last.Status, attempts, last.Err)
			return d.deadLetter(ctx, env, name, id, last.Err, last.Status, attempts)
		}
		wait := d.backoff(attempts - priorAttempts)
		if last.RetryAfter > 0 {
			wait = min(last.RetryAfter, d.cfg.Retry.MaxRetryAfter)
		}
		log.Debug("delivery failed, retrying", "attempt", attempts, "status", last.Status, "err", last.Err, "wait", wait)
		if err := d.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// attempt builds and sends one request.
func (d *Dispatcher) attempt(ctx context.Context, st *sinkState, env *Envelope, id string) result {
	r, err := st.s.build(env, id, d.now(), false)
	if err != nil {
		// Building only fails for a broken template, key or sealed value: retrying
		// cannot help.
		return result{Outcome: OutcomeDead, Err: err.Error()}
	}
	status, h, body, err := send(ctx, d.client, r, st.cfg.Timeout, d.ua)
	if r.Secret {
		clear(r.Body)
	}
	if err != nil {
		return result{Outcome: OutcomeRetry, Err: err.Error()}
	}
	return st.s.classify(status, h, body)
}

// backoff returns the wait after the n-th failed attempt (n >= 1).
func (d *Dispatcher) backoff(n int) time.Duration {
	r := d.cfg.Retry
	b := r.InitialBackoff
	for i := 1; i < n && b < r.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, r.MaxBackoff)
	if r.Jitter > 0 {
		b = time.Duration(float64(b) * (1 - r.Jitter*rand.Float64()))
	}
	return b
}

func (d *Dispatcher) sleep(ctx context.Context, t time.Duration) error {
	if t <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(t)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// finish reports a final outcome.
func (d *Dispatcher) finish(ctx context.Context, env *Envelope, st *sinkState, id, outcome string, status, attempts int, errText string) {
	if outcome != OutcomeDelivered && outcome != OutcomeDead && outcome != OutcomeGone {
		deliveriesTotal.WithLabelValues(st.cfg.Name, outcome).Inc()
	}
	if d.recorder == nil {
		return
	}
	now := d.now()
	err := d.recorder.RecordDelivery(ctx, Delivery{
		AlertID: env.Alert.ID, Update: env.Alert.Update, Type: env.Alert.Type,
		Sink: st.cfg.Name, SinkType: st.cfg.Type, WebhookID: id,
		Outcome: outcome, Status: status, Attempts: attempts, Error: errText,
		Latency: now.Sub(env.EnqueuedAt), At: now.UTC(),
	})
	if err != nil {
		d.log.Error("record delivery", "alert", env.Alert.ID, "sink", st.cfg.Name, "err", err)
	}
}

// deadLetter writes the dead letter; an error means the envelope must be retried.
func (d *Dispatcher) deadLetter(ctx context.Context, env *Envelope, sinkName, id, errText string, status, attempts int) error {
	dl := DeadLetter{Envelope: *env, Sink: sinkName, WebhookID: id, Error: errText, Status: status, Attempts: attempts, DeadAt: d.now().UTC()}
	if st, ok := d.sinks[sinkName]; !ok || st.cfg.Type != SinkRFC7009 {
		dl.Envelope.Sealed = nil // only a revocation replay needs it
	}
	v, err := json.Marshal(&dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	deadLettersTotal.WithLabelValues(sinkName).Inc()
	d.log.Warn("alert dead-lettered", "alert", env.Alert.ID, "update", env.Alert.Update, "sink", sinkName, "err", errText)
	if d.dlq == nil {
		return nil
	}
	if err := d.dlq.Put(ctx, []QueueMessage{{Key: []byte(env.Alert.Fingerprint), Value: v}}); err != nil {
		return fmt.Errorf("write dead letter for alert %s: %w", env.Alert.ID, err)
	}
	return nil
}

// Run reads src until ctx ends (or a bounded src is exhausted), delivering each
// envelope and committing in order. On return every message whose delivery
// finished has been committed (best effort with a short timeout after ctx ends).
func (d *Dispatcher) Run(ctx context.Context, src Source) error {
	return d.run(ctx, src, func(ctx context.Context, it *Item) error {
		var env Envelope
		if err := json.Unmarshal(it.Value, &env); err != nil {
			undecodableTotal.Inc()
			d.log.Error("skip undecodable outbox message", "partition", it.Partition, "offset", it.Offset, "err", err)
			return nil
		}
		return d.Deliver(ctx, &env)
	})
}

// Replay re-delivers the dead letters of src, each to the sink that refused
// it, with a fresh retry budget; those that fail again are dead-lettered anew.
// It returns the number of dead letters handled.
func (d *Dispatcher) Replay(ctx context.Context, src Source) (int, error) {
	var mu sync.Mutex
	n := 0
	err := d.run(ctx, src, func(ctx context.Context, it *Item) error {
		var dl DeadLetter
		if err := json.Unmarshal(it.Value, &dl); err != nil || dl.Sink == "" {
			undecodableTotal.Inc()
			d.log.Error("skip undecodable dead letter", "partition", it.Partition, "offset", it.Offset, "err", err)
			return nil
		}
		// A replay gets a fresh age budget.
		dl.Envelope.EnqueuedAt = d.now().UTC()
		if err := d.deliverTo(ctx, &dl.Envelope, []string{dl.Sink}, 0); err != nil {
			return err
		}
		mu.Lock()
		n++
		mu.Unlock()
		return nil
	})
	return n, err
}

// run is the fetch / deliver / commit loop.
func (d *Dispatcher) run(ctx context.Context, src Source, handle func(context.Context, *Item) error) error {
	tr := &tracker{parts: map[int][]*Item{}}
	sem := make(chan struct{}, d.cfg.Dispatcher.Concurrency)
	var wg sync.WaitGroup
	commitCtx, stopCommit := context.WithCancel(context.Background())
	var commitErr error
	var cwg sync.WaitGroup
	cwg.Go(func() {
		t := time.NewTicker(d.cfg.Dispatcher.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-commitCtx.Done():
				return
			case <-t.C:
				if err := commitReady(commitCtx, src, tr); err != nil && commitCtx.Err() == nil {
					d.log.Error("commit outbox offsets", "err", err)
				}
			}
		}
	})
	var fetchErr error
	chain := map[string]chan struct{}{}
	for {
		if len(chain) > 4*d.cfg.Dispatcher.Concurrency {
			for k, c := range chain {
				select {
				case <-c:
					delete(chain, k)
				default:
				}
			}
		}
		it, err := src.Fetch(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				fetchErr = err
			}
			break
		}
		tr.add(it)
		d.inflight.Add(1)
		// Deliveries of one token's alerts keep their outbox order (an update
		// never overtakes its first alert): each waits for the previous one.
		key := orderKey(it)
		prev := chain[key]
		mine := make(chan struct{})
		chain[key] = mine
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			d.inflight.Add(-1)
			break
		}
		wg.Go(func() {
			defer func() { close(mine); <-sem; d.inflight.Add(-1) }()
			if prev != nil {
				select {
				case <-prev:
				case <-ctx.Done():
					return
				}
			}
			if err := handle(ctx, it); err != nil {
				if ctx.Err() == nil {
					d.log.Error("delivery not finished; the message will be retried after a restart", "partition", it.Partition, "offset", it.Offset, "err", err)
				}
				return
			}
			tr.markDone(it)
		})
	}
	wg.Wait()
	stopCommit()
	cwg.Wait()
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	commitErr = commitReady(fctx, src, tr)
	if fetchErr != nil {
		return fmt.Errorf("read alerts source: %w", fetchErr)
	}
	if commitErr != nil {
		return commitErr
	}
	return ctx.Err()
}

// orderKey returns the fingerprint an outbox message or dead letter is about.
func orderKey(it *Item) string {
	if it.Key != "" {
		return it.Key
	}
	var k struct {
		Alert    struct{ Fingerprint string } `json:"alert"`
		Envelope struct {
			Alert struct{ Fingerprint string } `json:"alert"`
		} `json:"envelope"`
	}
	if json.Unmarshal(it.Value, &k) != nil {
		return ""
	}
	if k.Alert.Fingerprint != "" {
		return k.Alert.Fingerprint
	}
	return k.Envelope.Alert.Fingerprint
}

// tracker keeps fetched items per partition in fetch order.
type tracker struct {
	mu    sync.Mutex
	parts map[int][]*Item
}

func (t *tracker) add(it *Item) {
	t.mu.Lock()
	q := t.parts[it.Partition]
	if n := len(q); n > 0 && it.Offset <= q[n-1].Offset {
		// The partition was re-read from its committed offset (a consumer-group
		// rebalance gave it back): the queued items belong to the old read and
		// must not decide commits any more; they are delivered again.
		clear(q)
		q = q[:0]
	}
	t.parts[it.Partition] = append(q, it)
	t.mu.Unlock()
}

func (t *tracker) markDone(it *Item) {
	t.mu.Lock()
	it.done = true
	t.mu.Unlock()
}

// ready pops, per partition, the done prefix and returns its last item.
func (t *tracker) ready() []*Item {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Item
	for p, q := range t.parts {
		i := 0
		for i < len(q) && q[i].done {
			i++
		}
		if i > 0 {
			out = append(out, q[i-1])
			t.parts[p] = append(q[:0], q[i:]...)
		}
	}
	return out
}

func commitReady(ctx context.Context, src Source, tr *tracker) error {
	var errs []error
	for _, it := range tr.ready() {
		if err := src.Commit(ctx, it); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// printDry prints the request that would be sent.
func (d *Dispatcher) printDry(env *Envelope, st *sinkState, id string) error {
	r, err := st.s.build(env, id, d.now(), true)
	if err != nil {
		d.dryMu.Lock()
		fmt.Fprintf(d.dryOut, "# sink %s: cannot build request: %v\n\n", st.cfg.Name, err)
		d.dryMu.Unlock()
		return nil
	}
	var out bytes.Buffer
	defer func() {
		d.dryMu.Lock()
		d.dryOut.Write(out.Bytes())
		d.dryMu.Unlock()
	}()
	r.Header.Set("User-Agent", d.ua)
	for k := range st.cfg.Headers {
		r.Header.Set(k, "[redacted]")
	}
	if r.Header.Get("Authorization") != "" {
		r.Header.Set("Authorization", "[redacted]")
	}
	fmt.Fprintf(&out, "# sink %s (%s), alert %s update %d\n%s %s\n", st.cfg.Name, st.cfg.Type, env.Alert.ID, env.Alert.Update, r.Method, r.URL)
	_ = r.Header.Write(&out)
	fmt.Fprintf(&out, "\n%s\n\n", r.Body)
	return nil
}
