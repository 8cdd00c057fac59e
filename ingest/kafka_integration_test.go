//go:build integration

package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
	"github.com/tokenwatch/tokenwatch/pipeline"
)

// produce writes n messages "<topic>#<i>" to topic, spread round-robin over its
// partitions.
func produce(t *testing.T, brokers []string, topic string, from, n int) {
	t.Helper()
	// A transport of its own: the shared default one caches topic metadata
	// for seconds, from before the topic existed.
	tr := &kafka.Transport{MetadataTTL: 200 * time.Millisecond}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{}, BatchSize: 500, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: tr}
	defer w.Close()
	msgs := make([]kafka.Message, 0, 500)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := from; i < from+n; i++ {
		msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprintf("%s#%d\nsecond line of the same message", topic, i))})
		if len(msgs) == cap(msgs) || i == from+n-1 {
			// A just-created topic may not be in every broker's metadata yet.
			for attempt := 0; ; attempt++ {
				err := w.WriteMessages(ctx, msgs...)
				if err == nil {
					break
				}
				if !errors.Is(err, kafka.UnknownTopicOrPartition) || attempt == 200 { // 20 s: past the writer's 6 s metadata refresh
					t.Fatalf("produce to %s: %v", topic, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			msgs = msgs[:0]
		}
	}
}

// collector is a stage that records every message it sees (value -> origin).
type collector struct {
	mu    sync.Mutex
	seen  map[string]tokenwatch.Origin
	count int
	kinds map[string]tokenwatch.SourceKind
}

func newCollector() *collector {
	return &collector{seen: map[string]tokenwatch.Origin{}, kinds: map[string]tokenwatch.SourceKind{}}
}

func (c *collector) Process(_ context.Context, b *tokenwatch.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range b.Records {
		v := string(r.Raw)
		c.seen[v] = r.Origin
		c.kinds[r.Source] = r.Kind
		c.count++
	}
	return nil
}

func (c *collector) has(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen) >= n
}

func kafkaConfig(brokers []string, group string, topics ...ingest.TopicConfig) ingest.KafkaConfig {
	k := ingest.DefaultConfig().Kafka
	k.Brokers = brokers
	k.GroupID = group
	k.Topics = topics
	k.BatchSize = 256
	k.FlushInterval = 20 * time.Millisecond
	k.SessionTimeout = 10 * time.Second
	k.RebalanceTimeout = 10 * time.Second
	k.HeartbeatInterval = 500 * time.Millisecond
	return k
}

// committed returns the group's committed offset per partition of topic.
func committed(t *testing.T, brokers []string, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	resp, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// highWatermarks returns the end offset of every partition of topic.
func highWatermarks(t *testing.T, brokers []string, topic string) map[int]int64 {
	t.Helper()
	conn, err := kafka.Dial("tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int64{}
	for _, p := range parts {
		lc, err := kafka.DialLeader(context.Background(), "tcp", net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)), topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		last, err := lc.ReadLastOffset()
		lc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[p.ID] = last
	}
	return out
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Records produced across the partitions of several topics are all consumed,
// with their topic's kind and exact origins, and the group's committed offsets
// reach every partition's end once the pipeline stops.
func TestKafkaConsumeAll(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	auth := testenv.CreateTopic(t, "tw-ingest-auth", 4)
	app := testenv.CreateTopic(t, "tw-ingest-app", 3)
	const n = 3000
	produce(t, brokers, auth, 0, n)
	produce(t, brokers, app, 0, n)

	group := "tw-consume-" + auth
	src, err := ingest.NewKafkaSource(kafkaConfig(brokers, group,
		ingest.TopicConfig{Name: auth, Kind: "auth"}, ingest.TopicConfig{Name: app, Kind: "app"}), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pipeline.Run(ctx, src, []tokenwatch.Stage{col}) }()
	waitFor(t, "every record", 2*time.Minute, func() bool { return col.has(2 * n) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}

	for _, topic := range []string{auth, app} {
		for i := range n {
			v := fmt.Sprintf("%s#%d\nsecond line of the same message", topic, i)
			o, ok := col.seen[v]
			if !ok {
				t.Fatalf("record %q never seen", v)
			}
			if o.Source != topic || o.Partition < 0 || o.Offset < 0 {
				t.Fatalf("record %q origin %+v", v, o)
			}
		}
	}
	if col.kinds[auth] != tokenwatch.KindAuth || col.kinds[app] != tokenwatch.KindApp {
		t.Errorf("kinds %v", col.kinds)
	}
	for _, tc := range []struct {
		topic string
		parts int
	}{{auth, 4}, {app, 3}} {
		hw := highWatermarks(t, brokers, tc.topic)
		c := committed(t, brokers, group, tc.topic, tc.parts)
		for p := range tc.parts {
			if c[p] != hw[p] {
				t.Errorf("%s[%d]: committed %d, high watermark %d", tc.topic, p, c[p], hw[p])
			}
		}
	}
}

// A new group with start_offset latest skips what is already in the topic; a
// group that committed resumes where it left off.
func TestKafkaStartOffset(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.CreateTopic(t, "tw-ingest-start", 2)
	produce(t, brokers, topic, 0, 100)

	cfg := kafkaConfig(brokers, "tw-latest-"+topic, ingest.TopicConfig{Name: topic, Kind: "auth"})
	cfg.StartOffset = ingest.StartLatest
	src, err := ingest.NewKafkaSource(cfg, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	col := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pipeline.Run(ctx, src, []tokenwatch.Stage{col}) }()
	// Only messages produced after the group got its assignment count as
	// "latest": send probes until one arrives.
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{MetadataTTL: 200 * time.Millisecond}}
	defer w.Close()
	waitFor(t, "a probe produced after the assignment", time.Minute, func() bool {
		col.mu.Lock()
		n := len(col.seen)
		col.mu.Unlock()
		if n > 0 {
			return true
		}
		if err := w.WriteMessages(context.Background(), kafka.Message{Value: []byte(topic + "#probe")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		return false
	})
	produce(t, brokers, topic, 100, 50)
	waitFor(t, "the 50 new records", time.Minute, func() bool { return col.has(51) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for v := range col.seen {
		if v == topic+"#probe" {
			continue
		}
		var i int
		if _, err := fmt.Sscanf(v[len(topic)+1:], "%d", &i); err != nil || i < 100 {
			t.Fatalf("start_offset latest delivered old record %q", v)
		}
	}
}

// Two consumers of one group split the partitions; when the second joins
// mid-stream and later leaves, every record is still seen (at least once).
func TestKafkaRebalance(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.CreateTopic(t, "tw-ingest-rebalance", 6)
	group := "tw-rebalance-" + topic
	cfg := kafkaConfig(brokers, group, ingest.TopicConfig{Name: topic, Kind: "auth"})

	type consumer struct {
		src    *ingest.KafkaSource
		col    *collector
		cancel context.CancelFunc
		done   chan error
	}
	start := func() *consumer {
		src, err := ingest.NewKafkaSource(cfg, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		c := &consumer{src: src, col: newCollector(), done: make(chan error, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		slow := tokenwatch.StageFunc(func(context.Context, *tokenwatch.Batch) error {
			time.Sleep(2 * time.Millisecond) // keep batches in flight during rebalances
			return nil
		})
		go func() { c.done <- pipeline.Run(ctx, src, []tokenwatch.Stage{c.col, slow}) }()
		return c
	}
	stop := func(c *consumer) {
		c.cancel()
		if err := <-c.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := c.src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}

	next := 0 // records produced so far
	produceMore := func(k int) {
		produce(t, brokers, topic, next, k)
		next += k
	}
	a := start()
	produceMore(2000)
	waitFor(t, "first consumer reading", time.Minute, func() bool { return a.col.has(100) })

	// The second consumer joins mid-stream: keep producing until the
	// rebalance gave it partitions with new records on them.
	b := start()
	waitFor(t, "second consumer to get partitions", 2*time.Minute, func() bool {
		if b.col.has(1) {
			return true
		}
		produceMore(50)
		return false
	})
	produceMore(1000)
	stop(b) // leaves: rebalance again, a takes everything back
	produceMore(2000)
	total := next

	union := func() int {
		seen := map[string]bool{}
		for _, c := range []*consumer{a, b} {
			c.col.mu.Lock()
			for v := range c.col.seen {
				seen[v] = true
			}
			c.col.mu.Unlock()
		}
		return len(seen)
	}
	waitFor(t, "every record seen by the group", 3*time.Minute, func() bool { return union() >= total })
	stop(a)

	aParts, bParts := map[int32]bool{}, map[int32]bool{}
	for _, o := range a.col.seen {
		aParts[o.Partition] = true
	}
	for _, o := range b.col.seen {
		bParts[o.Partition] = true
	}
	if len(bParts) == 0 || len(bParts) == 6 {
		t.Errorf("second consumer read partitions %v; want a share of the 6", bParts)
	}
	dups := a.col.count + b.col.count - total
	t.Logf("consumer A: %d records from partitions %v; B: %d from %v; redelivered %d (at-least-once)", a.col.count, aParts, b.col.count, bParts, dups)
	hw := highWatermarks(t, brokers, topic)
	c := committed(t, brokers, group, topic, 6)
	for p := range 6 {
		if c[p] != hw[p] {
			t.Errorf("partition %d: committed %d, end %d", p, c[p], hw[p])
		}
	}
}
