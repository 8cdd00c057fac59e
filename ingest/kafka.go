package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/tokenwatch/tokenwatch"
)

// KafkaSource consumes topics through a Kafka consumer group with a kafka-go
// Reader. Messages are fetched with FetchMessage (never auto-committed); Commit
// sends, per partition, the highest offset of the batch, so an offset is never
// committed before every earlier message of its partition went through the
// pipeline. One message is one record, newlines included.
//
// Rebalances: the Reader joins each new generation by itself. Messages of a
// revoked partition that were fetched but not yet committed are redelivered to
// the partition's new owner (at-least-once). A commit that the coordinator
// rejects because the generation changed is counted
// (tokenwatch_ingest_kafka_commits_lost_total) and dropped: its records are
// redelivered, never lost. A commit never moves a partition's offset below what
// this process committed before.
type KafkaSource struct {
	r     *kafka.Reader
	kinds map[string]tokenwatch.SourceKind
	cfg   KafkaConfig
	max   int

	mu        sync.Mutex
	batches   map[*tokenwatch.Batch]*kafkaBatch
	committed map[topicPartition]int64 // highest offset committed by this process
	lag       map[topicPartition]prometheus.Gauge
	commitBuf []kafka.Message

	stop chan struct{}
	done chan struct{}
}

type topicPartition struct {
	topic     string
	partition int
}

// kafkaBatch remembers, for one outstanding batch, the highest offset per
// partition, so Commit does not depend on what stages did to the records.
type kafkaBatch struct {
	hi map[topicPartition]int64
	// hwm is the high watermark seen with the last message of each partition.
	hwm map[topicPartition]int64
}

// NewKafkaSource builds the consumer-group reader for cfg. maxRecord cuts longer
// messages (FlagTruncated).
func NewKafkaSource(cfg KafkaConfig, maxRecord int) (*KafkaSource, error) {
	dialer, err := cfg.dialer()
	if err != nil {
		return nil, err
	}
	topics := make([]string, 0, len(cfg.Topics))
	kinds := make(map[string]tokenwatch.SourceKind, len(cfg.Topics))
	for _, t := range cfg.Topics {
		k, err := ParseKind(t.Kind)
		if err != nil {
			return nil, fmt.Errorf("kafka topic %s: %w", t.Name, err)
		}
		topics = append(topics, t.Name)
		kinds[t.Name] = k
	}
	start := kafka.FirstOffset
	if cfg.StartOffset == StartLatest {
		start = kafka.LastOffset
	}
	rc := kafka.ReaderConfig{
		Brokers:           cfg.Brokers,
		GroupID:           cfg.GroupID,
		GroupTopics:       topics,
		Dialer:            dialer,
		QueueCapacity:     cfg.QueueCapacity,
		MinBytes:          1,
		MaxBytes:          cfg.FetchMaxBytes,
		MaxWait:           cfg.FetchMaxWait,
		ReadBatchTimeout:  cfg.FetchMaxWait + 10*time.Second,
		HeartbeatInterval: cfg.HeartbeatInterval,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		CommitInterval:    0, // synchronous: Commit returns once the coordinator answered
		StartOffset:       start,
		// WatchPartitionChanges makes the group rebalance when partitions are
		// added to a topic, so new partitions are consumed without a restart.
		WatchPartitionChanges: true,
		ErrorLogger:           kafka.LoggerFunc(logKafkaError),
	}
	if err := rc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka reader: %w", err)
	}
	s := &KafkaSource{
		r:         kafka.NewReader(rc),
		kinds:     kinds,
		cfg:       cfg,
		max:       maxRecord,
		batches:   map[*tokenwatch.Batch]*kafkaBatch{},
		committed: map[topicPartition]int64{},
		lag:       map[topicPartition]prometheus.Gauge{},
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go s.watchStats()
	return s, nil
}

// logKafkaError logs the Reader's errors. When a generation ends the Reader
// stops its partition fetchers by expiring their connections' deadlines, which
// it reports as "i/o timeout" errors: those are logged at debug level, the rest
// as warnings.
func logKafkaError(msg string, args ...any) {
	text := fmt.Sprintf(msg, args...)
	if strings.HasSuffix(text, "i/o timeout") || strings.Contains(text, "context canceled") {
		slog.Debug("kafka: " + text)
		return
	}
	slog.Warn("kafka: " + text)
}

// watchStats turns the Reader's periodic statistics into metrics.
func (s *KafkaSource) watchStats() {
	defer close(s.done)
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			st := s.r.Stats() // counters in Stats are deltas since the last call
			metricKafkaRebalances.Add(float64(st.Rebalances))
		}
	}
}

func (s *KafkaSource) batchState(b *tokenwatch.Batch) *kafkaBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	kb := s.batches[b]
	if kb == nil {
		kb = &kafkaBatch{hi: map[topicPartition]int64{}, hwm: map[topicPartition]int64{}}
		s.batches[b] = kb
	}
	return kb
}

// Next implements Source.
func (s *KafkaSource) Next(ctx context.Context, b *tokenwatch.Batch) error {
	kb := s.batchState(b)
	clear(kb.hi)
	clear(kb.hwm)
	m, err := s.fetchFirst(ctx)
	if err != nil {
		return err
	}
	first := len(b.Records)
	nbytes := 0
	var cur topicPartition
	var curHi, curHWM int64 = -1, 0
	add := func(m *kafka.Message) {
		tp := topicPartition{m.Topic, m.Partition}
		if tp != cur {
			if curHi >= 0 {
				kb.hi[cur], kb.hwm[cur] = curHi, curHWM
			}
			cur = tp
		}
		curHi, curHWM = m.Offset, m.HighWaterMark
		r := appendRecord(b)
		r.Origin = tokenwatch.Origin{Source: m.Topic, Partition: int32(m.Partition), Offset: m.Offset}
		r.Kind = s.kinds[m.Topic]
		r.Raw = m.Value
		if len(r.Raw) > s.max {
			r.Raw = r.Raw[:s.max:s.max]
			r.Flags |= tokenwatch.FlagTruncated
			metricTruncated.WithLabelValues("kafka").Inc()
		}
		nbytes += len(r.Raw)
	}
	add(&m)

	fctx, cancel := context.WithTimeout(ctx, s.cfg.FlushInterval)
	for len(b.Records)-first < s.cfg.BatchSize && nbytes < s.cfg.BatchBytes {
		m, err = s.r.FetchMessage(fctx)
		if err != nil {
			if fctx.Err() == nil && !errors.Is(err, io.EOF) {
				// Deliver what we have; the next Next waits out the error.
				metricKafkaFetchErrors.Inc()
				slog.Warn("kafka: fetch failed; the reader retries by itself", "err", err)
			}
			break
		}
		add(&m)
	}
	cancel()
	kb.hi[cur], kb.hwm[cur] = curHi, curHWM

	s.mu.Lock()
	for tp, off := range kb.hi {
		g := s.lag[tp]
		if g == nil {
			g = metricKafkaLag.WithLabelValues(tp.topic, strconv.Itoa(tp.partition))
			s.lag[tp] = g
		}
		g.Set(float64(max(kb.hwm[tp]-off-1, 0)))
	}
	s.mu.Unlock()
	metricRecords.WithLabelValues("kafka").Add(float64(len(b.Records) - first))
	metricBytes.WithLabelValues("kafka").Add(float64(nbytes))
	return nil
}

// fetchFirst blocks for the first message of a batch. Fetch errors (a group
// join that failed its attempts, a broker gone) are transient for the Reader,
// which keeps healing in the background: they are counted and logged, and the
// fetch is retried, so a rebalance or a broker restart never stops the pipeline.
func (s *KafkaSource) fetchFirst(ctx context.Context) (kafka.Message, error) {
	backoff := 100 * time.Millisecond
	for {
		m, err := s.r.FetchMessage(ctx)
		switch {
		case err == nil:
			return m, nil
		case ctx.Err() != nil:
			return m, ctx.Err()
		case errors.Is(err, io.EOF):
			return m, io.EOF // reader closed
		}
		metricKafkaFetchErrors.Inc()
		slog.Warn("kafka: fetch failed; retrying", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return m, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Commit implements Source.
func (s *KafkaSource) Commit(ctx context.Context, b *tokenwatch.Batch) error {
	s.mu.Lock()
	kb := s.batches[b]
	msgs := s.commitBuf[:0]
	if kb != nil {
		for tp, off := range kb.hi {
			if done, ok := s.committed[tp]; ok && off <= done {
				continue // a redelivery after a rebalance: never move backwards
			}
			msgs = append(msgs, kafka.Message{Topic: tp.topic, Partition: tp.partition, Offset: off})
		}
	}
	s.commitBuf = msgs
	s.mu.Unlock()
	if len(msgs) == 0 {
		return nil
	}
	err := s.r.CommitMessages(ctx, msgs...)
	switch {
	case err == nil:
		metricKafkaCommits.Inc()
		s.mu.Lock()
		for _, m := range msgs {
			s.committed[topicPartition{m.Topic, m.Partition}] = m.Offset
		}
		s.mu.Unlock()
		return nil
	case isGenerationError(err):
		metricKafkaCommitsLost.Inc()
		slog.Warn("kafka: offset commit rejected after a rebalance; the batch's records will be redelivered", "err", err)
		return nil
	default:
		return fmt.Errorf("kafka commit: %w", err)
	}
}

// isGenerationError reports errors meaning "this member's generation is over":
// the commit is dropped and the records are redelivered to the partition owner.
func isGenerationError(err error) bool {
	return errors.Is(err, kafka.RebalanceInProgress) ||
		errors.Is(err, kafka.IllegalGeneration) ||
		errors.Is(err, kafka.UnknownMemberId) ||
		errors.Is(err, kafka.FencedInstanceID)
}

// Close leaves the consumer group and closes the reader. Commit everything
// processed before calling Close: a closed reader accepts no commits.
func (s *KafkaSource) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	<-s.done
	if err := s.r.Close(); err != nil {
		return fmt.Errorf("kafka reader close: %w", err)
	}
	return nil
}

func (c KafkaConfig) dialer() (*kafka.Dialer, error) {
	d := &kafka.Dialer{ClientID: c.ClientID, Timeout: 10 * time.Second, DualStack: true}
	if c.TLS.Enabled {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		d.TLS = tc
	}
	if c.SASL.Mechanism != "" {
		m, err := c.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		d.SASLMechanism = m
	}
	return d, nil
}

func (t TLSConfig) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ingest.kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ingest.kafka.tls.ca_file: no PEM certificate in %s", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ingest.kafka.tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (c SASLConfig) mechanism() (sasl.Mechanism, error) {
	switch c.Mechanism {
	case SASLPlain:
		return plain.Mechanism{Username: c.Username, Password: c.Password}, nil
	case SASLScram256:
		m, err := scram.Mechanism(scram.SHA256, c.Username, c.Password)
		if err != nil {
			return nil, fmt.Errorf("ingest.kafka.sasl: %w", err)
		}
		return m, nil
	case SASLScram512:
		m, err := scram.Mechanism(scram.SHA512, c.Username, c.Password)
		if err != nil {
			return nil, fmt.Errorf("ingest.kafka.sasl: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("ingest.kafka.sasl.mechanism: unknown mechanism %q; use plain, scram-sha-256 or scram-sha-512", c.Mechanism)
}
