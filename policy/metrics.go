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
