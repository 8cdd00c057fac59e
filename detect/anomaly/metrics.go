package anomaly

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tokenwatch/tokenwatch"
)

var (
	metricTokens = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "tokenwatch_anomaly_tokens",
		Help: "Tokens with state in the anomaly engine.",
	})
	metricEvictions = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_evictions_total",
		Help: "Token states evicted because their shard reached max_tokens (least recently used first).",
	})
	metricExpirations = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_expirations_total",
		Help: "Token states dropped because the token expired (exp + expiry_grace) or was idle for idle_ttl, in event time.",
	})
	metricUses = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_uses_total",
		Help: "Token uses and leak sightings observed by the anomaly engine.",
	})
	metricAlerts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_alerts_total",
		Help: "Alerts raised by the anomaly engine, by type.",
	}, []string{"type"})
	metricSuppressed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_alerts_suppressed_total",
		Help: "Alerts not raised because the same type, token and networks was raised just before.",
	}, []string{"type"})
	metricRevocations = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_revocations_total",
		Help: "Revocations applied to the anomaly engine's revocation table.",
	})
	metricRevocationsInvalid = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_revocations_invalid_total",
		Help: "Revocations ignored because they named no token (no fingerprint, no jti) or had no time.",
	})
	metricLateRevocations = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_late_revocation_alerts_total",
		Help: "post_revocation_use alerts raised when a revocation was read after the uses it covers.",
	})
	metricLate = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_late_uses_total",
		Help: "Uses older than the token's whole kept history (more than ~24 days, or before a full ring); judged by the single-use rules only.",
	})
	metricInternFull = promauto.NewCounter(prometheus.CounterOpts{
		Name: "tokenwatch_anomaly_intern_full_total",
		Help: "Display strings not kept for evidence because max_interned_strings was reached.",
	})
)

var alertTypes = [...]string{
	tokenwatch.AlertTokenLeak, tokenwatch.AlertImpossibleTravel, tokenwatch.AlertConcurrentReplay,
	tokenwatch.AlertLeakedTokenReplay, tokenwatch.AlertPostRevocationUse,
	tokenwatch.AlertExpiredTokenAccepted, tokenwatch.AlertAlgNoneAccepted,
}

// typeIndex returns the index of an alert type in alertTypes.
func typeIndex(typ string) int {
	for i, t := range alertTypes {
		if t == typ {
			return i
		}
	}
	panic("BUG: anomaly: unknown alert type " + typ)
}

var (
	alertCounters      [len(alertTypes)]prometheus.Counter
	suppressedCounters [len(alertTypes)]prometheus.Counter
)

func init() {
	for i, t := range alertTypes {
		alertCounters[i] = metricAlerts.WithLabelValues(t)
		suppressedCounters[i] = metricSuppressed.WithLabelValues(t)
	}
}
