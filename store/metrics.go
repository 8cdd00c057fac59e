package store

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metric handles, created once on the default registerer. Labels carry table
// names only: never a token, an IP or a user.
var (
	rowsWritten = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_store_rows_written_total",
		Help: "Rows acknowledged by ClickHouse, by table.",
	}, []string{"table"})
	insertDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tokenwatch_store_insert_duration_seconds",
		Help:    "Duration of successful INSERTs into ClickHouse, by table.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"table"})
	insertErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_store_insert_errors_total",
		Help: "Failed INSERT attempts (each is retried with backoff), by table.",
	}, []string{"table"})
	pendingRows = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "tokenwatch_store_pending_rows",
		Help: "Rows built and not yet acknowledged by ClickHouse.",
	})
	blockedSeconds = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_store_backpressure_seconds_total",
		Help: "Time writers spent waiting because max_pending_rows rows were already pending.",
	})
)
