package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/tokenwatch/tokenwatch"
)

// Queue is a durable, ordered queue of JSON messages keyed by fingerprint: the
// outbox and the dead-letter queue. Put returns only once the messages are
// durable (acknowledged by all in-sync Kafka replicas, or fsynced).
// Implementations must be safe for concurrent use.
type Queue interface {
	Put(ctx context.Context, msgs []QueueMessage) error
	Close() error
}

// QueueMessage is one message for a Queue.
type QueueMessage struct {
	Key   []byte
	Value []byte
}

// KafkaQueue writes to a Kafka topic with acks=all, synchronously.
type KafkaQueue struct {
	w       *kafka.Writer
	brokers []string
}

// NewKafkaQueue returns a queue on topic. The topic must exist (or the broker
// must create topics automatically).
func NewKafkaQueue(brokers []string, topic string, writeTimeout time.Duration) *KafkaQueue {
	return &KafkaQueue{brokers: brokers, w: &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           time.Millisecond,
		WriteTimeout:           writeTimeout,
		AllowAutoTopicCreation: true,
	}}
}

// Put writes msgs and waits for all acknowledgements.
func (q *KafkaQueue) Put(ctx context.Context, msgs []QueueMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	// The timestamp lets a restart find the messages of the last dedupe window
	// (ListOffsets by time); kafka-go would send 0.
	now := time.Now()
	km := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		km[i] = kafka.Message{Key: m.Key, Value: m.Value, Time: now}
	}
	if err := q.w.WriteMessages(ctx, km...); err != nil {
		return fmt.Errorf("write %d messages to kafka topic %s: %w", len(msgs), q.w.Topic, err)
	}
	return nil
}

// Close flushes and closes the writer.
func (q *KafkaQueue) Close() error { return q.w.Close() }

// FileQueue appends JSON lines to a file and fsyncs after every Put.
type FileQueue struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// NewFileQueue opens (creating) path for appending.
func NewFileQueue(path string) (*FileQueue, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open alerts queue file %s: %w", path, err)
	}
	return &FileQueue{f: f, path: path}, nil
}

// Put appends one line per message value and fsyncs.
func (q *FileQueue) Put(_ context.Context, msgs []QueueMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	var buf []byte
	for _, m := range msgs {
		buf = append(buf, m.Value...)
		buf = append(buf, '\n')
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, err := q.f.Write(buf); err != nil {
		return fmt.Errorf("append to alerts queue file %s: %w", q.path, err)
	}
	if err := q.f.Sync(); err != nil {
		return fmt.Errorf("fsync alerts queue file %s: %w", q.path, err)
	}
	return nil
}

// Close closes the file.
func (q *FileQueue) Close() error { return q.f.Close() }

// Outbox is the pipeline stage that passes b.Alerts through the Policy and
// writes what comes out to the durable outbox Queue before Process returns, so
// the pipeline commits its source offsets only after its alerts are durable.
//
// It does not modify b. When the queue write fails, Process returns the error
// and keeps the envelopes it could not write: the next Process call writes them
// first, so an alert the policy already let out is never lost to a retried batch.
type Outbox struct {
	q        Queue
	policy   *Policy
	router   *Router
	revokers map[string]bool
	timeout  time.Duration
	now      func() time.Time
	log      *slog.Logger
	// restoreTimeout bounds the restore of the policy state at start.
	restoreTimeout time.Duration

	mu      sync.Mutex
	unsent  []QueueMessage
	emitted []Emitted
	lastDue time.Time
}

// OutboxOption configures an Outbox.
type OutboxOption func(*Outbox)

// WithClock sets the clock of the policy (tests).
func WithClock(now func() time.Time) OutboxOption { return func(o *Outbox) { o.now = now } }

// WithOutboxLogger sets the logger of the outbox stage (default slog.Default()).
func WithOutboxLogger(l *slog.Logger) OutboxOption { return func(o *Outbox) { o.log = l } }

// NewOutbox returns the outbox stage for cfg writing to q. Before it returns it
// rebuilds the policy state from what q holds (see Restore), within
// cfg.Policy.RestoreTimeout; a failure is logged and leaves the state empty.
func NewOutbox(cfg Config, q Queue, opts ...OutboxOption) *Outbox {
	o := &Outbox{
		q:              q,
		policy:         NewPolicy(cfg.Policy),
		router:         NewRouter(cfg),
		revokers:       map[string]bool{},
		timeout:        cfg.Outbox.WriteTimeout,
		now:            time.Now,
		log:            slog.Default(),
		restoreTimeout: cfg.Policy.RestoreTimeout,
	}
	for _, s := range cfg.Sinks {
		if s.Type == SinkRFC7009 {
			o.revokers[s.Name] = true
		}
	}
	for _, opt := range opts {
		opt(o)
	}
	o.restore()
	return o
}

// OpenQueue opens the outbox queue cfg names: the Kafka topic when brokers are
// set, else the file.
func OpenQueue(cfg OutboxConfig) (Queue, error) {
	switch {
	case cfg.File != "":
		return NewFileQueue(cfg.File)
	case len(cfg.Brokers) > 0:
		return NewKafkaQueue(cfg.Brokers, cfg.Topic, cfg.WriteTimeout), nil
	}
	return nil, fmt.Errorf("alerts.outbox: neither brokers nor file is set; set outbox.brokers and outbox.topic, or outbox.file")
}

// Process implements tokenwatch.Stage.
func (o *Outbox) Process(ctx context.Context, b *tokenwatch.Batch) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	em := o.emitted[:0]
	for i := range b.Alerts {
		a := b.Alerts[i]
		exp, sealed := tokenFacts(b, &a)
		a.Sealed = sealed
		em = o.policy.Admit(em, a, exp, now)
	}
	if now.Sub(o.lastDue) >= time.Second {
		em = o.policy.Due(em, now)
		o.lastDue = now
	}
	err := o.write(ctx, em, now)
	clear(em)
	o.emitted = em[:0]
	return err
}

// Tick writes the updates that are due; call it periodically (every second) so
// updates go out while the pipeline is idle.
func (o *Outbox) Tick(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	o.lastDue = now
	return o.write(ctx, o.policy.Due(nil, now), now)
}

// Flush writes every pending update now (call before shutdown).
func (o *Outbox) Flush(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	return o.write(ctx, o.policy.Flush(nil, now), now)
}

// Close flushes pending updates and closes the queue.
func (o *Outbox) Close(ctx context.Context) error {
	err := o.Flush(ctx)
	if cerr := o.q.Close(); err == nil {
		err = cerr
	}
	return err
}

// Policy returns the outbox's policy (for inspection).
func (o *Outbox) Policy() *Policy { return o.policy }

// write encodes em behind any unsent messages and writes them; o.mu is held.
func (o *Outbox) write(ctx context.Context, em []Emitted, now time.Time) error {
	for i := range em {
		m, err := o.encode(&em[i], now)
		if err != nil {
			return err
		}
		o.unsent = append(o.unsent, m)
	}
	if len(o.unsent) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := o.q.Put(wctx, o.unsent); err != nil {
		return fmt.Errorf("alerts outbox: %w", err)
	}
	enqueuedTotal.Add(float64(len(o.unsent)))
	clear(o.unsent)
	o.unsent = o.unsent[:0]
	return nil
}

func (o *Outbox) encode(e *Emitted, now time.Time) (QueueMessage, error) {
	env := Envelope{Alert: e.Alert, EnqueuedAt: now.UTC()}
	if len(e.Alert.Sealed) > 0 {
		for _, s := range o.router.Route(&e.Alert) {
			if o.revokers[s] {
				env.Sealed = e.Alert.Sealed
				break
			}
		}
	}
	if !e.TokenExp.IsZero() {
		t := e.TokenExp.UTC()
		env.TokenExp = &t
	}
	v, err := json.Marshal(&env)
	if err != nil {
		return QueueMessage{}, fmt.Errorf("encode alert %s: %w", e.Alert.ID, err)
	}
	return QueueMessage{Key: []byte(e.Alert.Fingerprint), Value: v}, nil
}

// tokenFacts finds the token expiry and sealed value of a's token among the
// batch's uses (the anomaly engine raises alerts from uses of this batch).
func tokenFacts(b *tokenwatch.Batch, a *tokenwatch.Alert) (exp time.Time, sealed []byte) {
	sealed = slices.Clone(a.Sealed)
	fp, err := tokenwatch.ParseFingerprint(a.Fingerprint)
	if err != nil {
		return exp, sealed
	}
	for i := range b.Uses {
		u := &b.Uses[i]
		if u.Fingerprint != fp {
			continue
		}
		if exp.IsZero() && u.JWT != nil {
			exp = u.JWT.ExpTime()
		}
		if len(sealed) == 0 && len(u.Sealed) > 0 {
			sealed = slices.Clone(u.Sealed)
		}
		if !exp.IsZero() && len(sealed) > 0 {
			break
		}
	}
	return exp, sealed
}
