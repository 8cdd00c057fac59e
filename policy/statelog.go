package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/internal/kafkalog"
)

// StateLogConfig configures the durable state of the policy engine (YAML
// "policy.state_log"), shaped like anomaly.state_log.
type StateLogConfig struct {
	// Brokers of the Kafka cluster holding the topic; empty: the brokers of
	// ingest.kafka (see WithDefaults), and off when there are none.
	Brokers []string `yaml:"brokers"`
	// Topic is the compacted topic of policy state; created (compacted,
	// replication as the broker's default) when it does not exist. Empty:
	// "<ingest.kafka.group_id>-policy-state", since the state belongs to the
	// consumer group whose offsets it matches.
	Topic string `yaml:"topic"`
	// Disabled keeps the state in memory only: a restart forgets it.
	Disabled bool `yaml:"disabled"`
}

// DefaultStateLogConfig: on, on the ingest brokers, topic named after the group.
func DefaultStateLogConfig() StateLogConfig { return StateLogConfig{} }

// WithDefaults fills the empty brokers and topic from the ingest consumer
// group's brokers and group id.
func (c StateLogConfig) WithDefaults(brokers []string, groupID string) StateLogConfig {
	if len(c.Brokers) == 0 {
		c.Brokers = brokers
	}
	if c.Topic == "" && groupID != "" {
		c.Topic = groupID + "-policy-state"
	}
	return c
}

// Enabled reports whether c (after WithDefaults) keeps the state in Kafka.
func (c StateLogConfig) Enabled() bool { return !c.Disabled && len(c.Brokers) > 0 && c.Topic != "" }

// Validate checks c.
func (c StateLogConfig) Validate() error {
	var errs []error
	for i, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("policy.state_log.brokers[%d]: %q is not host:port; write it like kafka-1:9092", i, b))
		}
	}
	if t := c.Topic; t != "" {
		valid := len(t) <= 249 && t != "." && t != ".."
		for i := 0; i < len(t) && valid; i++ {
			ch := t[i]
			valid = ch == '.' || ch == '_' || ch == '-' || '0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z'
		}
		if !valid {
			errs = append(errs, fmt.Errorf("policy.state_log.topic: %q is not a Kafka topic name; use up to 249 of a-z A-Z 0-9 . _ - (or leave it empty for <group_id>-policy-state)", t))
		}
	}
	return errors.Join(errs...)
}

// StateLog makes the policy engine's state survive restarts and kill -9. It
// is two stages: itself, which runs the engine in the policy stage's place,
// and Persist, placed after the stages that make a batch's alerts durable
// (the outbox), which writes every state entry the batch changed (a tombstone
// for an entry that is gone) to a compacted topic with acks=all before the
// batch can be committed. Restore reads the whole topic back on start.
//
// The order matters as for anomaly.StateLog: state written before its alerts
// were durable would, after a kill -9 between the two, make the replayed
// batch look already checked and its findings would be lost. Written after
// them, a kill -9 anywhere costs only the replay of the uncommitted batches,
// whose findings come out again with the same deterministic ids.
type StateLog struct {
	engine *Engine
	cfg    StateLogConfig
	w      *kafka.Writer
	log    *slog.Logger
	recs   []record
	buf    []byte
	out    []kafka.Message
	// pending: out was not written yet (a failed write is retried with the
	// same records; the engine forgot them when they were taken).
	pending bool
}

// NewStateLog creates the topic if needed, makes engine record its changes
// and returns the stage. Call Restore before the first batch.
func NewStateLog(ctx context.Context, cfg StateLogConfig, engine *Engine, log *slog.Logger) (*StateLog, error) {
	if !cfg.Enabled() {
		return nil, errors.New("policy.state_log: brokers and topic are required")
	}
	if log == nil {
		log = slog.Default()
	}
	if err := kafkalog.EnsureCompactedTopic(ctx, cfg.Brokers, cfg.Topic); err != nil {
		return nil, fmt.Errorf("policy.state_log: %w", err)
	}
	engine.trackChanges()
	return &StateLog{
		engine: engine, cfg: cfg, log: log,
		w: kafkalog.NewStateWriter(cfg.Brokers, cfg.Topic),
	}, nil
}

// Restore rebuilds the engine's state from every partition of the topic,
// retrying for up to a minute while the brokers settle. A record that does
// not decode is counted (tokenwatch_policy_state_decode_errors_total),
// logged and skipped.
func (s *StateLog) Restore(ctx context.Context) error {
	return kafkalog.RetryRestore(ctx, s.log, "policy", s.cfg.Topic, s.restore)
}

func (s *StateLog) restore(ctx context.Context) error {
	start := time.Now()
	n, err := kafkalog.PartitionCount(ctx, s.cfg.Brokers, s.cfg.Topic)
	if err != nil {
		return err
	}
	r := s.engine.restoring()
	bad := 0
	for p := range n {
		_, err := kafkalog.ReadPartition(ctx, s.cfg.Brokers, s.cfg.Topic, p, func(m kafka.Message) {
			metricStateRestored.Inc()
			if err := r.apply(m.Key, m.Value); err != nil {
				metricStateDecodeErrors.Inc()
				if bad++; bad <= 10 {
					s.log.Warn("policy: skip malformed state record", "topic", s.cfg.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
				}
			}
		})
		if err != nil {
			return err
		}
	}
	r.finish()
	metricStateRestoreSeconds.Observe(time.Since(start).Seconds())
	s.log.Info("policy: state restored", "topic", s.cfg.Topic, "records", r.n, "malformed", bad, "after", time.Since(start).Round(time.Millisecond))
	return nil
}

// Process implements tokenwatch.Stage: the engine's Process.
func (s *StateLog) Process(ctx context.Context, b *tokenwatch.Batch) error {
	return s.engine.Process(ctx, b)
}

// Persist returns the stage that writes the state the batch changed to the
// topic; place it after the alerts outbox.
func (s *StateLog) Persist() tokenwatch.Stage { return tokenwatch.StageFunc(s.persist) }

func (s *StateLog) persist(ctx context.Context, _ *tokenwatch.Batch) error {
	if !s.pending {
		s.recs, s.buf = s.engine.appendChanges(s.recs[:0], s.buf[:0])
		s.out = s.out[:0]
		for _, r := range s.recs {
			m := kafka.Message{Key: s.buf[r.k0:r.k1]}
			if r.v1 >= 0 {
				m.Value = s.buf[r.k1:r.v1]
			}
			s.out = append(s.out, m)
		}
		s.pending = len(s.out) > 0
	}
	if !s.pending {
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
			return fmt.Errorf("write %d policy state records to %s: %w", len(s.out), s.cfg.Topic, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	s.pending = false
	metricStateWritten.Add(float64(len(s.out)))
	return nil
}

// Close flushes and closes the writer.
func (s *StateLog) Close() error { return s.w.Close() }
