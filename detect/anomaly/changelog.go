package anomaly

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/internal/kafkalog"
)

// The changelog holds the latest state of every token, keyed by state key
// (hex), and every revocation (key "r:" + revocation key), so that state can
// be rebuilt after a restart, a kill -9 or a rebalance. The Owner of the
// scale-out writes one per uses partition; a single `tokenwatch run` writes
// its own through StateLog.

// changelogMessages appends to out the changelog records of a processed batch:
// the latest state of every token the batch touched (a tombstone when the state
// is gone; a revoked token's state when it has one) and every revocation. Keys
// and values are slices of vals.
func changelogMessages(e *Engine, b *tokenwatch.Batch, hdr []kafka.Header, out []kafka.Message, vals []byte) ([]kafka.Message, []byte) {
	type span struct{ k0, k1, v0, v1 int }
	var spans []span
	seen := make(map[tokenwatch.Fingerprint]bool, len(b.Uses))
	for i := range b.Uses {
		k := KeyOf(&b.Uses[i])
		if seen[k] {
			continue
		}
		seen[k] = true
		k0 := len(vals)
		vals = k.AppendHex(vals)
		k1 := len(vals)
		var ok bool
		vals, ok = e.Snapshot(vals, k)
		v1 := len(vals)
		if !ok {
			v1 = -1
		}
		spans = append(spans, span{k0, k1, k1, v1})
	}
	for i := range b.Revocations {
		rv := &b.Revocations[i]
		for _, k := range RevocationKeys(rv) {
			// The token's state, when it has one: a late revocation judged
			// its kept uses and remembered the alerts it raised.
			if !seen[k] {
				seen[k] = true
				k0 := len(vals)
				vals = k.AppendHex(vals)
				k1 := len(vals)
				var ok bool
				if vals, ok = e.Snapshot(vals, k); ok {
					spans = append(spans, span{k0, k1, k1, len(vals)})
				} else {
					vals = vals[:k0]
				}
			}
			k0 := len(vals)
			vals = append(vals, "r:"...)
			vals = k.AppendHex(vals)
			k1 := len(vals)
			vals = AppendRevocation(vals, rv)
			spans = append(spans, span{k0, k1, k1, len(vals)})
		}
	}
	for _, s := range spans {
		m := kafka.Message{Key: vals[s.k0:s.k1], Headers: hdr}
		if s.v1 >= 0 {
			m.Value = vals[s.v0:s.v1]
		}
		out = append(out, m)
	}
	return out, vals
}

// applyChangelog applies one changelog record to e.
func applyChangelog(e *Engine, m kafka.Message, log *slog.Logger) {
	metricRestored.Inc()
	if len(m.Key) > 2 && m.Key[0] == 'r' && m.Key[1] == ':' {
		var rv tokenwatch.Revocation
		if err := DecodeRevocation(m.Value, &rv); err != nil {
			metricDecodeErrors.WithLabelValues("changelog").Inc()
			return
		}
		e.record(rv) // its alerts went out before it was written
		return
	}
	var k tokenwatch.Fingerprint
	if err := k.UnmarshalText(m.Key); err != nil {
		metricDecodeErrors.WithLabelValues("changelog").Inc()
		return
	}
	if m.Value == nil {
		e.Drop(k)
		return
	}
	if err := e.Restore(m.Value); err != nil {
		metricDecodeErrors.WithLabelValues("changelog").Inc()
		log.Warn("anomaly: skip malformed state in changelog", "partition", m.Partition, "offset", m.Offset, "err", err)
	}
}

// StateLogConfig configures the durable state of a single-process engine
// (YAML "anomaly.state_log"). The scale-out owners keep their own changelog
// (scale_out.changelog_topic) and do not use it.
type StateLogConfig struct {
	// Brokers of the Kafka cluster holding the topic; empty: the brokers of
	// ingest.kafka (tokenwatch run fills them in), and off when there are none.
	Brokers []string `yaml:"brokers"`
	// Topic is the compacted topic of token states; created (compacted,
	// replication as the broker's default) when it does not exist. Empty:
	// "<ingest.kafka.group_id>-anomaly-state", since the state belongs to the
	// consumer group whose offsets it matches.
	Topic string `yaml:"topic"`
	// Disabled keeps the state in memory only: a restart forgets it.
	Disabled bool `yaml:"disabled"`
}

// DefaultStateLogConfig: on, on the ingest brokers, topic named after the group.
func DefaultStateLogConfig() StateLogConfig { return StateLogConfig{} }

// Validate checks c.
func (c StateLogConfig) Validate() error {
	for i, b := range c.Brokers {
		if b == "" {
			return fmt.Errorf("anomaly.state_log.brokers[%d]: empty; write host:port", i)
		}
	}
	return nil
}

// StateLog makes a single-process engine's state survive restarts. It is two
// stages: itself, which runs the engine in the anomaly stage's place, and
// Persist, placed after the stages that make a batch's alerts durable (the
// outbox), which writes the latest state of every token the batch touched and
// its revocations to a compacted topic (acks=all) before the batch can be
// committed. Restore reads the whole topic back on start.
//
// The order matters: state written before its alerts were durable would, after
// a kill -9 between the two, make the replayed batch look already seen and its
// alerts would be lost. Written after them, a kill -9 anywhere costs only the
// replay of the uncommitted batches, whose alerts come out again with the same
// deterministic ids.
type StateLog struct {
	engine *Engine
	cfg    StateLogConfig
	w      *kafka.Writer
	log    *slog.Logger
	out    []kafka.Message
	vals   []byte
}

// NewStateLog creates the topic if needed and returns the stage.
func NewStateLog(ctx context.Context, cfg StateLogConfig, engine *Engine, log *slog.Logger) (*StateLog, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" {
		return nil, errors.New("anomaly.state_log: brokers and topic are required")
	}
	if err := kafkalog.EnsureCompactedTopic(ctx, cfg.Brokers, cfg.Topic); err != nil {
		return nil, fmt.Errorf("anomaly.state_log: %w", err)
	}
	return &StateLog{
		engine: engine, cfg: cfg, log: log,
		w: kafkalog.NewStateWriter(cfg.Brokers, cfg.Topic),
	}, nil
}

// Restore rebuilds the engine's state from every partition of the topic,
// retrying for up to a minute while the brokers settle (a new topic's
// partitions may answer "not leader" for a moment).
func (s *StateLog) Restore(ctx context.Context) error {
	return kafkalog.RetryRestore(ctx, s.log, "anomaly", s.cfg.Topic, s.restore)
}

func (s *StateLog) restore(ctx context.Context) error {
	start := time.Now()
	n, err := kafkalog.PartitionCount(ctx, s.cfg.Brokers, s.cfg.Topic)
	if err != nil {
		return err
	}
	total := 0
	for p := range n {
		c, err := kafkalog.ReadPartition(ctx, s.cfg.Brokers, s.cfg.Topic, p, func(m kafka.Message) { applyChangelog(s.engine, m, s.log) })
		if err != nil {
			return err
		}
		total += c
	}
	metricRebuildSeconds.Observe(time.Since(start).Seconds())
	s.log.Info("anomaly: state restored", "topic", s.cfg.Topic, "records", total, "tokens", s.engine.Len(), "after", time.Since(start).Round(time.Millisecond))
	return nil
}

// Process implements tokenwatch.Stage: the engine's Process.
func (s *StateLog) Process(ctx context.Context, b *tokenwatch.Batch) error {
	return s.engine.Process(ctx, b)
}

// Persist returns the stage that writes the batch's changed states to the
// topic; place it after the alerts outbox.
func (s *StateLog) Persist() tokenwatch.Stage { return tokenwatch.StageFunc(s.persist) }

func (s *StateLog) persist(ctx context.Context, b *tokenwatch.Batch) error {
	s.out, s.vals = changelogMessages(s.engine, b, nil, s.out[:0], s.vals[:0])
	if len(s.out) == 0 {
		return nil
	}
	// A topic created moments ago may be unknown to the writer's cached
	// metadata for a few seconds: retry such temporary errors here, bounded.
	deadline := time.Now().Add(15 * time.Second)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := s.w.WriteMessages(ctx, s.out...)
		if err == nil {
			break
		}
		if !kafkalog.Temporary(err) || time.Now().After(deadline) {
			return fmt.Errorf("write %d token states to %s: %w", len(s.out), s.cfg.Topic, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	metricChangelogWritten.Add(float64(len(s.out)))
	return nil
}

// Close flushes and closes the writer.
func (s *StateLog) Close() error { return s.w.Close() }
