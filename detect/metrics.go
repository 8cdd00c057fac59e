package detect

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the scan stage (Process). Scan itself counts nothing: the CLI and
// library callers measure what they need, and the hot loop stays free of
// atomic adds. Labels carry the credential kind only, never a token.
var (
	metricRecords = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_detect_records_scanned_total",
		Help: "Records scanned for credentials by the scan stage.",
	})
	metricBytes = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_detect_bytes_scanned_total",
		Help: "Bytes of records scanned for credentials by the scan stage.",
	})
	metricFindings = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_detect_findings_total",
		Help: "Credentials found by the scan stage, by kind.",
	}, []string{"kind"})
	// findingsByKind resolves the counter of every kind once.
	findingsByKind = func() map[string]prometheus.Counter {
		m := map[string]prometheus.Counter{}
		for _, r := range ruleInfos {
			m[r.Kind] = metricFindings.WithLabelValues(r.Kind)
		}
		return m
	}()
)
