// Package kafkalog owns the Kafka plumbing of tokenwatch's compacted state
// topics (anomaly.state_log, the scale-out changelog, policy.state_log):
// creating a compacted topic and waiting until it serves, counting its
// partitions, reading one partition from its first offset to the end seen at
// the start, and telling retryable write errors from the rest. What the
// records mean belongs to the packages that write them.
package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
)

// Partitions is the partition count of the state topics tokenwatch creates.
const Partitions = 4

// ReadPartition reads partition p of topic from its first offset to the end
// seen at the start, calling fn for every record, and returns how many it read.
func ReadPartition(ctx context.Context, brokers []string, topic string, p int, fn func(kafka.Message)) (int, error) {
	first, last, err := PartitionOffsets(ctx, brokers, topic, p)
	if err != nil || last <= first {
		return 0, err
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   brokers,
		Topic:     topic,
		Partition: p,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return 0, fmt.Errorf("%s/%d: set offset: %w", topic, p, err)
	}
	n := 0
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return n, fmt.Errorf("%s/%d: read: %w", topic, p, err)
		}
		fn(m)
		n++
		if m.Offset >= last-1 {
			return n, nil
		}
	}
}

// PartitionOffsets returns the first offset and the end (next) offset of
// partition p of topic, asking its leader through each broker in turn.
func PartitionOffsets(ctx context.Context, brokers []string, topic string, p int) (first, last int64, err error) {
	var lastErr error
	for _, b := range brokers {
		conn, err := kafka.DialLeader(ctx, "tcp", b, topic, p)
		if err != nil {
			lastErr = err
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		first, last, err = conn.ReadOffsets()
		conn.Close()
		if err != nil {
			lastErr = err
			continue
		}
		return first, last, nil
	}
	return 0, 0, fmt.Errorf("%s/%d offsets: %w", topic, p, lastErr)
}

// PartitionCount reads the number of partitions of topic. It never creates
// the topic (a broker with auto.create.topics.enable would create a missing
// one, with one partition and the default cleanup policy, on the metadata
// request kafka.Conn.ReadPartitions sends).
func PartitionCount(ctx context.Context, brokers []string, topic string) (int, error) {
	n, exists, err := partitionCount(ctx, brokers, topic)
	if err == nil && !exists {
		err = fmt.Errorf("topic %s does not exist", topic)
	}
	return n, err
}

func partitionCount(ctx context.Context, brokers []string, topic string) (n int, exists bool, err error) {
	c, done := client(brokers, 10*time.Second)
	defer done()
	res, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, false, fmt.Errorf("read partitions of %s: %w", topic, err)
	}
	for _, t := range res.Topics {
		if t.Name != topic {
			continue
		}
		switch {
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition):
			return 0, false, nil
		case t.Error != nil:
			return 0, false, fmt.Errorf("read partitions of %s: %w", topic, t.Error)
		case len(t.Partitions) == 0:
			return 0, false, fmt.Errorf("topic %s has no partitions", topic)
		}
		return len(t.Partitions), true, nil
	}
	return 0, false, nil
}

// client returns a kafka.Client with a transport of its own: the shared
// default transport answers metadata requests from a cache refreshed every
// few seconds, which does not know a topic created a moment ago.
func client(brokers []string, timeout time.Duration) (*kafka.Client, func()) {
	tr := &kafka.Transport{}
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: timeout, Transport: tr}, tr.CloseIdleConnections
}

// EnsureCompactedTopic creates topic with cleanup.policy=compact and
// Partitions partitions when it does not exist yet (an existing topic is left
// as it is), and waits until every partition serves.
func EnsureCompactedTopic(ctx context.Context, brokers []string, topic string) error {
	_, exists, err := partitionCount(ctx, brokers, topic)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if exists {
		return nil
	}
	c, done := client(brokers, 30*time.Second)
	defer done()
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: Partitions, ReplicationFactor: -1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
	}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return WaitServing(ctx, brokers, topic)
}

// WaitServing waits (up to 30 s) until every partition of a new topic has a
// leader that answers for it: metadata can name a leader a moment before it
// serves, and a write then fails with "Unknown Topic Or Partition".
func WaitServing(ctx context.Context, brokers []string, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	for {
		var n int
		if n, err = PartitionCount(ctx, brokers, topic); err == nil {
			for p := 0; p < n && err == nil; p++ {
				_, _, err = PartitionOffsets(ctx, brokers, topic, p)
			}
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s does not serve yet: %w", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Temporary reports whether a kafka-go write error is worth retrying: a
// kafka.Error that says so, or a batch whose every failed message does.
func Temporary(err error) bool {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && !Temporary(e) {
				return false
			}
		}
		return true
	}
	var ke kafka.Error
	return errors.As(err, &ke) && ke.Temporary()
}

// NewStateWriter returns the writer of a state topic: keyed records to the
// partition of their key, acks=all, large batches split under the broker's
// default message.max.bytes (1 MB).
func NewStateWriter(brokers []string, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1 << 14,
		BatchBytes:   900_000,
		BatchTimeout: time.Millisecond,
	}
}

// RetryRestore runs restore until it succeeds, ctx ends or a minute has
// passed (a new topic's partitions may answer "not leader" for a moment),
// backing off from 200 ms to 5 s and logging each failure with who and topic.
func RetryRestore(ctx context.Context, log *slog.Logger, who, topic string, restore func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for wait := 200 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := restore(ctx)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		log.Warn(who+": restore state failed; retrying", "topic", topic, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}
