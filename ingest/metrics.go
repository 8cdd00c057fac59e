package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metric handles, created once. Labels never carry record content: source_type
// is "kafka", "file" or "stdin"; topic and partition come from the configuration
// and the broker.
var (
	metricTruncated = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_records_truncated_total",
		Help: "Records longer than ingest.max_record_bytes, cut to that size (the rest of the line is skipped).",
	}, []string{"source_type"})
	metricRecords = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_records_total",
		Help: "Records read by the sources.",
	}, []string{"source_type"})
	metricBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_bytes_total",
		Help: "Raw record bytes read by the sources (without line terminators).",
	}, []string{"source_type"})
	metricFilesOpened = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_files_opened_total",
		Help: "Files opened by file sources (a rotated file counts again).",
	})
	metricFilesSkipped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_files_skipped_total",
		Help: "Files a file source skipped, by reason (binary, unreadable, not_regular).",
	}, []string{"reason"})
	metricFileRotations = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_file_rotations_total",
		Help: "Followed files that were rotated (replaced) or truncated in place.",
	}, []string{"how"})
	metricReadErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_read_errors_total",
		Help: "Read errors of sources (a file that fails mid-way is abandoned after its last good line).",
	}, []string{"source_type"})
	metricKafkaLag = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tokenwatch_ingest_kafka_lag_messages",
		Help: "Messages between the last message fetched and the partition's high watermark.",
	}, []string{"topic", "partition"})
	metricKafkaCommits = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_kafka_commits_total",
		Help: "Offset commits sent to the consumer group coordinator.",
	})
	metricKafkaCommitsLost = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_kafka_commits_lost_total",
		Help: "Offset commits rejected because of a rebalance; their records are redelivered (at-least-once).",
	})
	metricKafkaFetchErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_kafka_fetch_errors_total",
		Help: "Fetch errors reported by the Kafka reader (retried; the reader heals by itself).",
	})
	metricKafkaRebalances = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_kafka_rebalances_total",
		Help: "Consumer group generations joined by this process.",
	})
)
