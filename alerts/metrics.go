package alerts

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metric handles. Labels carry sink names and outcomes only: never a token, an
// address or a user.
var (
	deliveriesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_alerts_deliveries_total",
		Help: "Delivery attempts by sink and outcome (delivered, retry, dead, gone, skipped, expired, disabled).",
	}, []string{"sink", "outcome"})
	deliverySeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tokenwatch_alerts_delivery_seconds",
		Help:    "Time from outbox enqueue to successful delivery, by sink.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
	}, []string{"sink"})
	deadLettersTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_alerts_dead_letters_total",
		Help: "Alerts written to the dead-letter queue, by sink.",
	}, []string{"sink"})
	circuitOpen = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tokenwatch_alerts_circuit_open",
		Help: "1 while the sink's circuit breaker is open or half-open, else 0.",
	}, []string{"sink"})
	enqueuedTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_alerts_enqueued_total",
		Help: "Alerts and updates written to the outbox.",
	})
	policySuppressed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_alerts_suppressed_total",
		Help: "Alerts merged into an earlier alert of the same type and fingerprint.",
	})
	policyUpdates = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_alerts_updates_total",
		Help: "Updates emitted for suppressed alerts.",
	})
	policyDropped = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_alerts_below_min_severity_total",
		Help: "Alerts dropped because their severity is below alerts.policy.min_severity.",
	})
	restoredKeys = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "tokenwatch_alerts_policy_restored_keys",
		Help: "(type, fingerprint) keys the alert policy rebuilt from the outbox at the last start.",
	})
	restoreMalformed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_alerts_policy_restore_malformed_total",
		Help: "Outbox messages skipped while rebuilding the alert policy state because they did not decode.",
	})
	undecodableTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_alerts_undecodable_messages_total",
		Help: "Outbox or dead-letter messages that did not decode and were skipped.",
	})
)

// hashStrings returns the hex SHA-256 of the parts, each length-prefixed.
func hashStrings(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		l := len(p)
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}
