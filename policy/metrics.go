package policy

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricFindings = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_policy_findings_total",
		Help: "Posture findings raised, by type.",
	}, []string{"type"})
	metricReloads = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_policy_reloads_total",
		Help: "Policy file reloads by result (ok, error).",
	}, []string{"result"})
	metricEvictions = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_policy_state_evictions_total",
		Help: "Times a policy state table reached policy.max_state and was halved.",
	})
)

var (
	metricStateWritten = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_policy_state_records_written_total",
		Help: "Policy state records (entries and tombstones) written to policy.state_log.",
	})
	metricStateRestored = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_policy_state_records_restored_total",
		Help: "Policy state records read back from policy.state_log on start.",
	})
	metricStateDecodeErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_policy_state_decode_errors_total",
		Help: "Policy state records skipped on restore because they did not decode.",
	})
	metricStateRestoreSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "tokenwatch_policy_state_restore_duration_seconds",
		Help:    "Time to read policy.state_log back on start.",
		Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
	})
)
