package enrich

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricLookups = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_enrich_lookups_total",
		Help: "Address lookups by result: cache_hit, db (looked up in a database), label (special range, not looked up), not_found, error.",
	}, []string{"result"})
	lookupCacheHit = metricLookups.WithLabelValues("cache_hit")
	lookupDB       = metricLookups.WithLabelValues("db")
	lookupLabel    = metricLookups.WithLabelValues("label")
	lookupNotFound = metricLookups.WithLabelValues("not_found")
	lookupError    = metricLookups.WithLabelValues("error")

	metricReloads = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_enrich_db_reloads_total",
		Help: "GeoIP database (re)loads by database (city, asn) and result (ok, error).",
	}, []string{"db", "result"})
	metricAvailable = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tokenwatch_enrich_db_available",
		Help: "1 when the GeoIP database (city, asn) is loaded, 0 when it is missing or unreadable.",
	}, []string{"db"})
	metricCacheEntries = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "tokenwatch_enrich_cache_entries",
		Help: "Addresses held in the GeoIP lookup cache.",
	})
)
