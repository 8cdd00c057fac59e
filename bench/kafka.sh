#!/usr/bin/env bash
# Consume throughput of the tokenwatch pipeline (Kafka source + scan + parse +
# null sink) vs. a bare kafka-go consumer-group reader, on the same topic in
# the same run. Needs a running Kafka (make servers-up, or scripts/kafka.sh
# start); TOKENWATCH_TEST_KAFKA names it (default 127.0.0.1:19092).
#
#   bench/kafka.sh [LINES]       default 1000000 realistic lines, ~1 credential per 1000
#
# The corpus is generated once (bench/corpus gen -mode bench) and cached under
# .cache/bench-kafka/. Results also go to .cache/bench-kafka/result-LINES.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
lines="${1:-1000000}"
out=".cache/bench-kafka"
corpus="$out/corpus-$lines"
mkdir -p "$out"
if [[ ! -s "$corpus/corpus.log" ]]; then
	echo "== generating $lines bench lines into $corpus"
	go run ./bench/corpus gen -o "$corpus" -mode bench -lines "$lines" -seed 1
fi
export TOKENWATCH_TEST_KAFKA="${TOKENWATCH_TEST_KAFKA:-127.0.0.1:19092}"
go run ./bench/kafka -corpus "$corpus/corpus.log" -partitions 4 -warmup 1 -rounds 3 -json "$out/result-$lines.json"
