// Package dashboards holds what the SOC and the operators look at: the
// Grafana dashboards (generated from the definitions in this package into
// grafana/dashboards/*.json), the Grafana provisioning of the ClickHouse and
// Prometheus datasources, and the Prometheus alerting rules with their
// promtool unit tests (prometheus/).
//
// It also implements the ClickHouse Grafana plugin's macro expansion
// ($__timeFilter, $__timeInterval, …) and Grafana's variable interpolation
// as the plugin and Grafana do them, so tests run every panel's SQL on a real
// ClickHouse engine.
//
// The package must not query anything at run time: tokenwatch does not import
// it. `go test ./dashboards -update` regenerates the JSON after a change here.
package dashboards
