//go:build integration

package kafkalog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/tokenwatch/tokenwatch/internal/kafkalog"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// TestCompactedTopicRoundTrip creates a compacted topic (twice: the second
// call leaves it alone; the broker auto-creates topics, so a metadata request
// that allowed it would have made a 1-partition, non-compacted one), writes records to each partition and reads every
// partition back to the end seen at the start.
func TestCompactedTopicRoundTrip(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := fmt.Sprintf("kafkalog-%d", time.Now().UnixNano())
	for range 2 {
		if err := kafkalog.EnsureCompactedTopic(ctx, brokers, topic); err != nil {
			t.Fatal(err)
		}
	}
	n, err := kafkalog.PartitionCount(ctx, brokers, topic)
	if err != nil || n != kafkalog.Partitions {
		t.Fatalf("PartitionCount = %d, %v; want %d", n, err, kafkalog.Partitions)
	}
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	dc, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"cleanup.policy"},
	}}})
	if err != nil || len(dc.Resources) != 1 || len(dc.Resources[0].ConfigEntries) != 1 || dc.Resources[0].ConfigEntries[0].ConfigValue != "compact" {
		t.Fatalf("cleanup.policy of %s: %+v, %v; want compact", topic, dc, err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	var msgs []kafka.Message
	for i := range 40 {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	total := 0
	for p := range n {
		// A loaded single broker can time out one request: retry the partition.
		var c int
		for attempt := 0; ; attempt++ {
			c, err = kafkalog.ReadPartition(ctx, brokers, topic, p, func(m kafka.Message) { got[string(m.Key)] = string(m.Value) })
			if err == nil || attempt == 2 {
				break
			}
			t.Logf("partition %d: %v; retrying", p, err)
		}
		if err != nil {
			t.Fatal(err)
		}
		total += c
	}
	if total != len(msgs) || len(got) != len(msgs) {
		t.Fatalf("read %d records, %d keys; wrote %d", total, len(got), len(msgs))
	}
	for i := range msgs {
		if got[string(msgs[i].Key)] != string(msgs[i].Value) {
			t.Errorf("key %s: %q", msgs[i].Key, got[string(msgs[i].Key)])
		}
	}
}
