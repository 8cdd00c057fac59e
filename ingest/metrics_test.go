package ingest

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
)

func metricValue(t *testing.T, how string) float64 {
	t.Helper()
	var m dto.Metric
	if err := metricFileRotations.WithLabelValues(how).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
