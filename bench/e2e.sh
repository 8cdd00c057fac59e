#!/usr/bin/env bash
# End-to-end benchmark of `tokenwatch run` on real Kafka and ClickHouse
# (bench/e2e): corpus from the scenario generator produced to Kafka, a bare
# kafka-go consumer as the baseline, then tokenwatch run with ClickHouse and
# alerts (Kafka outbox, in-process dispatcher, signed webhooks) as a
# subprocess; prints a Markdown table. Needs running servers (make servers-up);
# TOKENWATCH_TEST_KAFKA / TOKENWATCH_TEST_CLICKHOUSE name them.
#
#   bench/e2e.sh [-small | -size 1GB] [other bench/e2e flags]
#
# Default: a ~1 GB corpus (2-4 minutes on 2 shared cores, plus ~35 s to generate
# it the first time); -small: ~40 MB,
# about a minute. Corpora are cached under .cache/bench-e2e/; results go to
# .cache/bench-e2e/result-<time>.json as well.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .cache/bench-e2e bin
go build -trimpath -o bin/tokenwatch ./cmd/tokenwatch
go build -trimpath -o bin/bench-e2e ./bench/e2e
export TOKENWATCH_TEST_KAFKA="${TOKENWATCH_TEST_KAFKA:-127.0.0.1:19092}"
export TOKENWATCH_TEST_CLICKHOUSE="${TOKENWATCH_TEST_CLICKHOUSE:-127.0.0.1:19000}"
exec bin/bench-e2e -bin bin/tokenwatch -json ".cache/bench-e2e/result-$(date -u +%Y%m%dT%H%M%SZ).json" "$@"
