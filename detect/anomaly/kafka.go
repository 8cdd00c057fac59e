package anomaly

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/internal/binrec"
	"github.com/tokenwatch/tokenwatch/internal/kafkalog"
)

// Scale-out over Kafka (DESIGN.md "Scale"):
//
//	stage one (any number of processes):  ... -> enrich -> Repartitioner -> store
//	     produces every use to UsesTopic keyed by its state key (hex), and
//	     every revocation to every partition
//	stage two (consumer group GroupID):   Owner: UsesTopic -> Engine -> sink
//	     and, per batch, each changed token's state to ChangelogTopic (same
//	     partition number as the use), before committing the offsets
//
// On partition assignment an Owner rebuilds the state of each newly assigned
// partition by reading that changelog partition from the beginning, so a
// rebalance or restart does not forget recent uses. The changelog topic should
// be compacted (cleanup.policy=compact,delete with retention.ms >= idle_ttl):
// only the latest state per token matters, and states older than the idle TTL
// are dead anyway. It must have as many partitions as UsesTopic.

// ScaleOutConfig configures the Kafka scale-out (YAML "anomaly.scale_out").
// It is off while Brokers is empty.
type ScaleOutConfig struct {
	Brokers []string `yaml:"brokers"`
	// UsesTopic is the repartition topic, keyed by state key.
	UsesTopic string `yaml:"uses_topic"`
	// ChangelogTopic holds each token's latest state, keyed by state key.
	ChangelogTopic string `yaml:"changelog_topic"`
	// GroupID is the consumer group of the owners.
	GroupID string `yaml:"group_id"`
	// BatchSize and BatchWait bound an owner's batch: up to BatchSize uses,
	// waiting at most BatchWait for more after the first.
	BatchSize int           `yaml:"batch_size"`
	BatchWait time.Duration `yaml:"batch_wait"`
}

// DefaultScaleOutConfig returns the defaults (off: no brokers).
func DefaultScaleOutConfig() ScaleOutConfig {
	return ScaleOutConfig{
		UsesTopic:      "tokenwatch.uses",
		ChangelogTopic: "tokenwatch.anomaly-state",
		GroupID:        "tokenwatch-anomaly",
		BatchSize:      1000,
		BatchWait:      20 * time.Millisecond,
	}
}

// Validate checks the scale-out configuration when it is enabled.
func (c ScaleOutConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return nil
	}
	var errs []error
	if c.UsesTopic == "" {
		errs = append(errs, errors.New("anomaly.scale_out.uses_topic: empty; set the repartition topic, e.g. tokenwatch.uses"))
	}
	if c.ChangelogTopic == "" || c.ChangelogTopic == c.UsesTopic {
		errs = append(errs, errors.New("anomaly.scale_out.changelog_topic: empty or the same as uses_topic; set a compacted topic, e.g. tokenwatch.anomaly-state"))
	}
	if c.GroupID == "" {
		errs = append(errs, errors.New("anomaly.scale_out.group_id: empty; set the owners' consumer group, e.g. tokenwatch-anomaly"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("anomaly.scale_out.batch_size: %d must be at least 1, e.g. 1000", c.BatchSize))
	}
	if c.BatchWait < 0 {
		errs = append(errs, fmt.Errorf("anomaly.scale_out.batch_wait: %v must not be negative, e.g. 20ms", c.BatchWait))
	}
	return errors.Join(errs...)
}

var (
	metricRepartitioned = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_repartitioned_total",
		Help: "Messages produced to the repartition topic, by kind (use, revocation).",
	}, []string{"kind"})
	metricDecodeErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_decode_errors_total",
		Help: "Malformed messages skipped by an owner, by topic role (uses, changelog).",
	}, []string{"topic"})
	metricChangelogWritten = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_changelog_written_total",
		Help: "Token states and revocations written to the changelog topic.",
	})
	metricRestored = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_changelog_restored_total",
		Help: "Changelog records applied while rebuilding state on partition assignment.",
	})
	metricRebuildSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "tokenwatch_anomaly_rebuild_duration_seconds",
		Help:    "Time to rebuild one partition's state from the changelog.",
		Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
	})
	metricOwnedPartitions = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "tokenwatch_anomaly_owned_partitions",
		Help: "Partitions of the uses topic this process owns.",
	})
)

// Message value kinds on the uses topic.
const (
	msgUse        = 'u'
	msgRevocation = 'r'
)

// partitionHeader pins a message to a partition (revocations are sent to
// every partition; changelog records to their use's partition).
const partitionHeader = "tokenwatch-partition"

// pinnedBalancer sends a message with a partitionHeader to that partition and
// any other by the hash of its key (kafka.Hash, Sarama-compatible).
type pinnedBalancer struct{ hash kafka.Hash }

func (b *pinnedBalancer) Balance(msg kafka.Message, partitions ...int) int {
	for _, h := range msg.Headers {
		if h.Key == partitionHeader {
			if p, err := strconv.Atoi(string(h.Value)); err == nil {
				for _, q := range partitions {
					if q == p {
						return p
					}
				}
			}
		}
	}
	return b.hash.Balance(msg, partitions...)
}

// PartitionOf returns the partition of the uses topic that owns key, for a
// topic with n partitions: kafka-go's Hash balancer (Sarama-compatible FNV-1a
// of the message key, here the key's hex form), without allocating.
func PartitionOf(key tokenwatch.Fingerprint, n int) int {
	var buf [32]byte
	hex.Encode(buf[:], key[:])
	h := uint32(2166136261)
	for _, c := range buf {
		h ^= uint32(c)
		h *= 16777619
	}
	p := int32(h) % int32(n)
	if p < 0 {
		p = -p
	}
	return int(p)
}

// ---- Repartitioner ---------------------------------------------------------------

// Repartitioner is the stage that hands token uses to the owners: it produces
// each use of a batch to the uses topic keyed by its state key, and each
// revocation to every partition (a revocation by fingerprint or by jti alone
// does not hash to the partition of the uses it applies to). It waits for the
// broker's acknowledgement, so the batch's source offsets may be committed
// after Process returns. The batch is left unchanged.
type Repartitioner struct {
	w          *kafka.Writer
	partitions int
	mu         sync.Mutex
	msgs       []kafka.Message
	buf        []byte
	spans      []struct{ k0, k1, v0, v1, pin int }
}

// NewRepartitioner connects to cfg.Brokers and reads the uses topic's
// partition count.
func NewRepartitioner(ctx context.Context, cfg ScaleOutConfig) (*Repartitioner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("anomaly.scale_out.brokers: empty; set the Kafka brokers to repartition uses")
	}
	n, err := kafkalog.PartitionCount(ctx, cfg.Brokers, cfg.UsesTopic)
	if err != nil {
		return nil, fmt.Errorf("repartitioner: %w", err)
	}
	return &Repartitioner{
		w: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Topic:        cfg.UsesTopic,
			Balancer:     &pinnedBalancer{},
			RequiredAcks: kafka.RequireAll,
			BatchSize:    max(cfg.BatchSize, 100),
			BatchTimeout: 2 * time.Millisecond,
			Compression:  kafka.Lz4,
		},
		partitions: n,
	}, nil
}

// Process implements tokenwatch.Stage.
func (r *Repartitioner) Process(ctx context.Context, b *tokenwatch.Batch) error {
	if len(b.Uses) == 0 && len(b.Revocations) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Keys and values are slices of one buffer; record offsets first, because
	// appending may move the buffer, and slice afterwards.
	type span struct{ k0, k1, v0, v1, pin int }
	spans := r.spans[:0]
	buf := r.buf[:0]
	for i := range b.Uses {
		u := &b.Uses[i]
		k0 := len(buf)
		buf = KeyOf(u).AppendHex(buf)
		k1 := len(buf)
		buf = append(buf, msgUse)
		buf = AppendUse(buf, u)
		spans = append(spans, span{k0, k1, k1, len(buf), -1})
	}
	for i := range b.Revocations {
		k0 := len(buf)
		buf = append(buf, "revocation"...)
		k1 := len(buf)
		buf = append(buf, msgRevocation)
		buf = AppendRevocation(buf, &b.Revocations[i])
		for p := 0; p < r.partitions; p++ {
			spans = append(spans, span{k0, k1, k1, len(buf), p})
		}
	}
	r.msgs = r.msgs[:0]
	for _, s := range spans {
		m := kafka.Message{Key: buf[s.k0:s.k1], Value: buf[s.v0:s.v1]}
		if s.pin >= 0 {
			m.Headers = []kafka.Header{{Key: partitionHeader, Value: strconv.AppendInt(nil, int64(s.pin), 10)}}
		}
		r.msgs = append(r.msgs, m)
	}
	r.spans = spans
	r.buf = buf
	if err := r.w.WriteMessages(ctx, r.msgs...); err != nil {
		return fmt.Errorf("produce %d token uses to %s: %w", len(r.msgs), r.w.Topic, err)
	}
	metricRepartitioned.WithLabelValues("use").Add(float64(len(b.Uses)))
	metricRepartitioned.WithLabelValues("revocation").Add(float64(len(b.Revocations)))
	clear(r.msgs)
	return nil
}

// Close flushes and closes the producer.
func (r *Repartitioner) Close() error { return r.w.Close() }

// ---- Owner -------------------------------------------------------------------

// Owner consumes the uses topic in a consumer group, owns the state of the
// tokens of its partitions, runs the engine on them and passes each batch
// (Uses decoded, Alerts filled) to a sink stage, e.g. the store and the alert
// outbox. Offsets are committed after the sink returned and the changed states
// are in the changelog: at-least-once, with deterministic alert ids.
//
// Each owned partition is consumed by its own goroutine, so the engine and the
// sink's Process are called concurrently; the sink must be safe for that and,
// like any Stage, must not retain the batch.
type Owner struct {
	cfg    ScaleOutConfig
	engine *Engine
	sink   tokenwatch.Stage
	log    *slog.Logger
	cl     *kafka.Writer
	nparts int

	mu    sync.Mutex
	owned map[int]bool // partitions whose state is in the engine
}

// OwnerOption configures an Owner.
type OwnerOption func(*Owner)

// WithLogger sets the owner's logger (default slog.Default()).
func WithLogger(l *slog.Logger) OwnerOption { return func(o *Owner) { o.log = l } }

// NewOwner returns an owner running engine; sink may be nil.
func NewOwner(cfg ScaleOutConfig, engine *Engine, sink tokenwatch.Stage, opts ...OwnerOption) (*Owner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("anomaly.scale_out.brokers: empty; set the Kafka brokers to own token state")
	}
	o := &Owner{
		cfg: cfg, engine: engine, sink: sink, log: slog.Default(), owned: map[int]bool{},
		cl: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Topic:        cfg.ChangelogTopic,
			Balancer:     &pinnedBalancer{},
			RequiredAcks: kafka.RequireAll,
			BatchSize:    max(cfg.BatchSize, 100),
			BatchTimeout: 2 * time.Millisecond,
			Compression:  kafka.Lz4,
		},
	}
	for _, f := range opts {
		f(o)
	}
	return o, nil
}

// Engine returns the owner's engine.
func (o *Owner) Engine() *Engine { return o.engine }

// Owned returns the partitions this owner currently owns.
func (o *Owner) Owned() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ps []int
	for p := range o.owned {
		ps = append(ps, p)
	}
	return ps
}

// Run consumes until ctx is cancelled, then leaves the group. It returns nil
// after a cancellation and an error when the topics are unusable.
func (o *Owner) Run(ctx context.Context) error {
	n, err := kafkalog.PartitionCount(ctx, o.cfg.Brokers, o.cfg.UsesTopic)
	if err != nil {
		return fmt.Errorf("anomaly owner: %w", err)
	}
	m, err := kafkalog.PartitionCount(ctx, o.cfg.Brokers, o.cfg.ChangelogTopic)
	if err != nil {
		return fmt.Errorf("anomaly owner: %w", err)
	}
	if n != m {
		return fmt.Errorf("anomaly owner: changelog topic %s has %d partitions, uses topic %s has %d; they must match",
			o.cfg.ChangelogTopic, m, o.cfg.UsesTopic, n)
	}
	o.nparts = n
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                o.cfg.GroupID,
		Brokers:           o.cfg.Brokers,
		Topics:            []string{o.cfg.UsesTopic},
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
	})
	if err != nil {
		return fmt.Errorf("anomaly owner: consumer group %s: %w", o.cfg.GroupID, err)
	}
	defer o.cl.Close()
	// Leave the group before returning, so a stopped owner's partitions move
	// at once rather than after the session timeout.
	defer group.Close()
	go func() {
		<-ctx.Done()
		group.Close()
	}()
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				o.setOwned(nil)
				return nil
			}
			o.log.Warn("anomaly owner: join group", "group", o.cfg.GroupID, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		assigned := gen.Assignments[o.cfg.UsesTopic]
		keep := map[int]bool{}
		for _, pa := range assigned {
			keep[pa.ID] = true
		}
		o.mu.Lock()
		prev := o.owned
		o.mu.Unlock()
		dropped := o.engine.Forget(func(k tokenwatch.Fingerprint) bool { return !keep[PartitionOf(k, o.nparts)] })
		o.log.Info("anomaly owner: partitions assigned", "group", o.cfg.GroupID, "generation", gen.ID,
			"partitions", len(assigned), "forgotten_tokens", dropped)
		o.setOwned(nil)
		for _, pa := range assigned {
			rebuild := !prev[pa.ID]
			gen.Start(func(ctx context.Context) { o.runPartition(ctx, gen, pa, rebuild) })
		}
	}
}

func (o *Owner) setOwned(ps map[int]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ps == nil {
		ps = map[int]bool{}
	}
	o.owned = ps
	metricOwnedPartitions.Set(float64(len(ps)))
}

func (o *Owner) markOwned(p int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.owned[p] = true
	metricOwnedPartitions.Set(float64(len(o.owned)))
}

// runPartition rebuilds one partition's state (unless it was already owned)
// and then consumes it until the generation ends. It returns only then: in a
// kafka-go generation, one returning function ends the generation for all.
func (o *Owner) runPartition(ctx context.Context, gen *kafka.Generation, pa kafka.PartitionAssignment, rebuild bool) {
	log := o.log.With("topic", o.cfg.UsesTopic, "partition", pa.ID)
	for rebuild {
		err := o.rebuild(ctx, pa.ID)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("anomaly owner: rebuild state from changelog", "err", err)
		sleep(ctx, time.Second)
	}
	o.markOwned(pa.ID)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   o.cfg.Brokers,
		Topic:     o.cfg.UsesTopic,
		Partition: pa.ID,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(pa.Offset); err != nil {
		log.Error("anomaly owner: set offset", "offset", pa.Offset, "err", err)
		<-ctx.Done()
		return
	}
	var (
		b    tokenwatch.Batch
		msgs []kafka.Message
		out  []kafka.Message
		vals []byte
	)
	for ctx.Err() == nil {
		msgs = msgs[:0]
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("anomaly owner: fetch", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		msgs = append(msgs, m)
		wctx, cancel := context.WithTimeout(ctx, o.cfg.BatchWait)
		for len(msgs) < o.cfg.BatchSize {
			m, err := r.FetchMessage(wctx)
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		cancel()
		// Once fetched, a batch is finished even if the generation ends meanwhile:
		// its changelog records must land before another owner rebuilds.
		pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		for {
			out, vals, err = o.handle(pctx, pa.ID, msgs, &b, out, vals)
			if err == nil {
				break
			}
			log.Warn("anomaly owner: process batch", "err", err, "offset", msgs[0].Offset)
			if pctx.Err() != nil {
				break
			}
			sleep(pctx, time.Second)
		}
		pcancel()
		if err != nil {
			// Not committed: the next owner of the partition reprocesses it.
			<-ctx.Done()
			return
		}
		last := msgs[len(msgs)-1].Offset
		if err := gen.CommitOffsets(map[string]map[int]int64{o.cfg.UsesTopic: {pa.ID: last + 1}}); err != nil && ctx.Err() == nil {
			log.Warn("anomaly owner: commit offsets", "offset", last+1, "err", err)
		}
	}
}

// handle runs one batch of messages: decode, engine, sink, changelog.
func (o *Owner) handle(ctx context.Context, partition int, msgs []kafka.Message, b *tokenwatch.Batch, out []kafka.Message, vals []byte) ([]kafka.Message, []byte, error) {
	b.Reset()
	for _, m := range msgs {
		if len(m.Value) == 0 {
			metricDecodeErrors.WithLabelValues("uses").Inc()
			continue
		}
		switch m.Value[0] {
		case msgUse:
			b.Uses = append(b.Uses, tokenwatch.TokenUse{})
			if err := DecodeUse(m.Value[1:], &b.Uses[len(b.Uses)-1]); err != nil {
				b.Uses = b.Uses[:len(b.Uses)-1]
				metricDecodeErrors.WithLabelValues("uses").Inc()
				o.log.Warn("anomaly owner: skip malformed use", "partition", partition, "offset", m.Offset, "err", err)
			}
		case msgRevocation:
			var rv tokenwatch.Revocation
			if err := DecodeRevocation(m.Value[1:], &rv); err != nil {
				metricDecodeErrors.WithLabelValues("uses").Inc()
				o.log.Warn("anomaly owner: skip malformed revocation", "partition", partition, "offset", m.Offset, "err", err)
				continue
			}
			b.Revocations = append(b.Revocations, rv)
		default:
			metricDecodeErrors.WithLabelValues("uses").Inc()
		}
	}
	if err := o.engine.Process(ctx, b); err != nil {
		return out, vals, err
	}
	if o.sink != nil {
		if err := o.sink.Process(ctx, b); err != nil {
			return out, vals, fmt.Errorf("sink: %w", err)
		}
	}
	hdr := []kafka.Header{{Key: partitionHeader, Value: strconv.AppendInt(nil, int64(partition), 10)}}
	out, vals = changelogMessages(o.engine, b, hdr, out[:0], vals[:0])
	if len(out) > 0 {
		if err := o.cl.WriteMessages(ctx, out...); err != nil {
			return out, vals, fmt.Errorf("write %d records to changelog %s: %w", len(out), o.cfg.ChangelogTopic, err)
		}
		metricChangelogWritten.Add(float64(len(out)))
	}
	return out, vals, nil
}

// rebuild reads changelog partition p from its first offset to the end seen
// at the start and applies every record to the engine.
func (o *Owner) rebuild(ctx context.Context, p int) error {
	start := time.Now()
	n, err := kafkalog.ReadPartition(ctx, o.cfg.Brokers, o.cfg.ChangelogTopic, p, func(m kafka.Message) { applyChangelog(o.engine, m, o.log) })
	if err != nil {
		return err
	}
	metricRebuildSeconds.Observe(time.Since(start).Seconds())
	o.log.Info("anomaly owner: state rebuilt from changelog", "topic", o.cfg.ChangelogTopic, "partition", p,
		"records", n, "tokens", o.engine.Len())
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// ---- revocation encoding ----------------------------------------------------------

const revVersion = 1

// AppendRevocation appends the binary encoding of r to dst.
func AppendRevocation(dst []byte, r *tokenwatch.Revocation) []byte {
	b := append(dst, revVersion)
	b = append(b, r.Fingerprint[:]...)
	b = appendStr(b, r.JTI)
	b = appendStr(b, r.Issuer)
	b = binary.AppendVarint(b, r.Time.Unix())
	b = binary.AppendUvarint(b, uint64(r.Time.Nanosecond()))
	b = appendStr(b, r.Reason)
	b = appendStr(b, r.Origin.Source)
	b = binary.AppendVarint(b, int64(r.Origin.Partition))
	b = binary.AppendVarint(b, r.Origin.Offset)
	return b
}

// DecodeRevocation decodes an AppendRevocation encoding. It never panics on
// malformed input.
func DecodeRevocation(data []byte, r *tokenwatch.Revocation) error {
	rd := reader{binrec.Reader{B: data}}
	if v := rd.Byte(); rd.Err == nil && v != revVersion {
		return fmt.Errorf("decode revocation: unknown version %d", v)
	}
	*r = tokenwatch.Revocation{}
	copy(r.Fingerprint[:], rd.Bytes(16))
	r.JTI, r.Issuer = rd.str(), rd.str()
	sec, nsec := rd.Varint(), rd.Uvarint()
	if nsec >= 1e9 {
		rd.Fail(errors.New("nanoseconds out of range"))
	}
	r.Time = time.Unix(sec, int64(nsec)).UTC()
	r.Reason = rd.str()
	r.Origin.Source = rd.str()
	r.Origin.Partition = rd.i32()
	r.Origin.Offset = rd.Varint()
	if rd.Err == nil && len(rd.B) != 0 {
		rd.Fail(fmt.Errorf("%d trailing bytes", len(rd.B)))
	}
	if rd.Err != nil {
		return fmt.Errorf("decode revocation: %w", rd.Err)
	}
	return nil
}
