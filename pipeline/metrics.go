package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricRecords = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_pipeline_records_total",
		Help: "Records that went through every stage and were committed, by source kind (auth, app, revocation).",
	}, []string{"source_kind"})
	metricBytes = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_pipeline_bytes_total",
		Help: "Raw bytes of the committed records.",
	})
	metricBatches = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_pipeline_batches_total",
		Help: "Batches that went through every stage and were committed.",
	})
	metricBatchSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "tokenwatch_pipeline_batch_seconds",
		Help:    "Time from a batch entering the first stage to its commit returning, retries included.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	metricStageSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tokenwatch_pipeline_stage_seconds",
		Help:    "Time one stage took on one batch (one attempt).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
	}, []string{"stage"})
	metricFailed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_pipeline_batches_failed_total",
		Help: "Batches that failed for good (a permanent error, or retries exhausted); the pipeline stopped without committing them.",
	})
	metricRetries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_pipeline_retries_total",
		Help: "Retried attempts, by step (stage or commit).",
	}, []string{"step"})
	metricInFlight = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "tokenwatch_pipeline_batches_in_flight",
		Help: "Batches read from the source and not yet committed.",
	})
	metricSinkLines = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_pipeline_sink_findings_total",
		Help: "Finding lines written to output.findings_file.",
	})
)
