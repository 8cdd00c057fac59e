package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// EnvKafka names the environment variable with the test brokers.
const EnvKafka = "TOKENWATCH_TEST_KAFKA"

// KafkaBrokers returns the brokers of the test Kafka (env TOKENWATCH_TEST_KAFKA, e.g.
// "127.0.0.1:19092", several separated by commas); it skips the test when unset.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	v := skipUnless(t, EnvKafka, "Kafka")
	var brokers []string
	for _, b := range strings.Split(v, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		t.Fatalf("%s=%q lists no broker", EnvKafka, v)
	}
	return brokers
}

var topicUnsafe = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// CreateTopic creates a topic with n partitions (replication 1) and a unique name
// that starts with prefix, and returns the name once the broker's metadata shows
// every partition with a leader and each leader answers for its partition. It skips the test when the test Kafka is not
// configured. Topics are not deleted: the test broker starts empty on every
// `scripts/kafka.sh start`.
func CreateTopic(t testing.TB, prefix string, partitions int) string {
	t.Helper()
	brokers := KafkaBrokers(t)
	if partitions < 1 {
		t.Fatalf("CreateTopic: partitions = %d, want >= 1", partitions)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("CreateTopic: random suffix: %v", err)
	}
	prefix = topicUnsafe.ReplaceAllString(prefix, "-")
	if prefix == "" {
		prefix = "test"
	}
	if len(prefix) > 200 {
		prefix = prefix[:200]
	}
	name := prefix + "-" + hex.EncodeToString(rnd[:])

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := createTopic(ctx, brokers[0], name, partitions); err != nil {
		t.Fatalf("CreateTopic %s: %v", name, err)
	}
	if err := waitTopicReady(ctx, brokers[0], name, partitions); err != nil {
		t.Fatalf("CreateTopic %s: %v", name, err)
	}
	return name
}

// createTopic sends CreateTopics to the controller that broker names.
func createTopic(ctx context.Context, broker, name string, partitions int) error {
	conn, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		return fmt.Errorf("dial broker %s: %w", broker, err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find controller via %s: %w", broker, err)
	}
	addr := net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port))
	cc, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial controller %s: %w", addr, err)
	}
	defer cc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = cc.SetDeadline(dl)
	}
	err = cc.CreateTopics(kafka.TopicConfig{Topic: name, NumPartitions: partitions, ReplicationFactor: 1})
	if err != nil {
		return fmt.Errorf("create topic on controller %s: %w", addr, err)
	}
	return nil
}

// waitTopicReady polls metadata until the topic has all its partitions, each with a leader.
func waitTopicReady(ctx context.Context, broker, name string, partitions int) error {
	var last string
	for {
		ready, state, err := topicReady(ctx, broker, name, partitions)
		if err == nil && ready {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = state
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic not ready (last seen: %s): %w", last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func topicReady(ctx context.Context, broker, name string, partitions int) (bool, string, error) {
	conn, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		return false, "", fmt.Errorf("dial broker %s: %w", broker, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	parts, err := conn.ReadPartitions(name)
	if err != nil {
		return false, "", fmt.Errorf("read partitions: %w", err)
	}
	withLeader := 0
	for _, p := range parts {
		if p.Topic == name && p.Leader.Host != "" {
			withLeader++
		}
	}
	if withLeader != partitions {
		return false, fmt.Sprintf("%d of %d partitions with a leader", withLeader, partitions), nil
	}
	// In KRaft the metadata can name a leader a moment before that broker serves the
	// partition (readers then see NOT_LEADER_OR_FOLLOWER): ask each leader for the
	// partition's end offset too.
	for _, p := range parts {
		leader := net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port))
		pc, err := kafka.DialLeader(ctx, "tcp", leader, name, p.ID)
		if err != nil {
			return false, "", fmt.Errorf("dial leader %s of partition %d: %w", leader, p.ID, err)
		}
		_ = pc.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = pc.ReadLastOffset()
		pc.Close()
		if err != nil {
			return false, fmt.Sprintf("partition %d not served by its leader yet: %v", p.ID, err), nil
		}
	}
	return true, "", nil
}
