// Package testenv hands integration tests the real servers that `make test` starts:
// Apache Kafka in KRaft mode (scripts/kafka.sh), Debian's clickhouse-server 18.16
// (scripts/clickhouse.sh) and chDB, current ClickHouse as a library
// (scripts/chdb.sh, scripts/chdb_server.py).
//
// Each accessor reads the server's address from an environment variable and skips
// the test when it is unset, so `go test -tags integration ./...` without servers
// skips instead of failing:
//
//	TOKENWATCH_TEST_KAFKA        brokers, comma-separated, e.g. 127.0.0.1:19092
//	TOKENWATCH_TEST_CLICKHOUSE   native protocol host:port, e.g. 127.0.0.1:19000
//	TOKENWATCH_TEST_CHDB_PYTHON  a python with chdb-core, e.g. .cache/venv/bin/python
//
// testenv owns only access to those servers for tests: it does not start Kafka or
// ClickHouse itself (the scripts and the Makefile do), it never talks to anything but
// the configured loopback servers, and it is imported only from _test.go files.
package testenv
