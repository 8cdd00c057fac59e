// Package e2e owns the whole-product reliability tests of tokenwatch (issue 8):
// the tokenwatch binary is built once per test run and driven as a subprocess
// with a YAML configuration written by the test, against the real test servers
// of internal/testenv (Kafka 4.1 and clickhouse-server 18.16), with generated
// scenario traffic (bench/scenario) produced to Kafka topics and signed
// webhooks received by servers in the test process.
//
// The tests cover: kill -9 at random points (every row and alert exactly once
// in what users see), ClickHouse down for 60 s (no loss, bounded memory, no
// offsets committed ahead), a webhook receiver down for minutes (every alert
// delivered after), malformed and hostile input (no crash, no stall, counted)
// and a search of everything tokenwatch wrote for planted raw tokens. See
// docs/reliability.md.
//
// Every test is behind the integration build tag and skips when the test
// servers are not configured. The package has no non-test code and must not
// be imported; it must not reach into tokenwatch's internals to make a test
// pass: it sees what a user sees (files, tables, topics, HTTP requests,
// /metrics, logs).
package e2e
