// Command e2e is tokenwatch's end-to-end benchmark against real servers, and
// the runner of `make demo-stack`.
//
//	go run ./bench/e2e [-size 1GB | -small] -bin bin/tokenwatch      (make bench-e2e)
//	go run ./bench/e2e -demo -bin bin/tokenwatch                     (make demo-stack)
//
// Benchmark mode generates a corpus with the scenario generator (bench/scenario:
// nginx and Envoy access logs whose lines carry bearer JWTs, application logs,
// a few leaking credentials, revocations), sized by -size, and produces it to
// three Kafka topics (auth, app, revocation). Then, in the same run, on the same
// topics:
//
//  1. a bare kafka-go consumer (consumer group, FetchMessage in batches of
//     4096, CommitMessages per batch) reads everything — the baseline;
//  2. `tokenwatch run` (a subprocess of the given binary) reads everything with
//     ClickHouse and alerts on: Kafka outbox, in-process dispatcher, a signed
//     webhook to a receiver in this process. While it consumes, trigger lines
//     (application log lines with a fresh JWT, each raising one token_leak
//     alert) are produced to a fourth topic at -alert-rate per second; the
//     time from producing a trigger to the receiver getting its alert is the
//     alert latency, under the full load of the backlog.
//
// It prints records/s, MB/s, the ratio to the bare consumer, ClickHouse rows/s,
// alert latency p50/p99, peak RSS (VmHWM) and CPU seconds per GB of the
// tokenwatch process, and the machine, as a Markdown table.
//
// Demo mode runs the `tokenwatch demo` scenario through the servers instead
// (see demo.go).
//
// ClickHouse: against a server older than 20.x (the test servers' Debian 18.16
// has no DateTime64, LowCardinality, TTL or skip indexes) the real migrations
// cannot run; the tables are created from the 18.16 variant of the schema that
// the store's integration tests use (store/testdata/clickhouse18/schema.sql,
// same tables and columns) and tokenwatch runs with clickhouse.migrate: false.
// Against a current server `tokenwatch migrate` creates the real schema.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

type options struct {
	brokers    string
	clickhouse string
	bin        string
	cacheDir   string
	schema18   string
	size       int64
	small      bool
	alertRate  int
	partitions int
	seed       uint64
	jsonOut    string
	keep       bool
	demo       bool
	noStore    bool
	noStateLog bool
	batchSize  int
	inFlight   int
	demoUsers  int
	database   string
	chUser     string
	chPassword string
	timeout    string
}

func main() {
	var o options
	flag.StringVar(&o.brokers, "brokers", envOr("TOKENWATCH_TEST_KAFKA", "127.0.0.1:19092"), "Kafka bootstrap broker")
	flag.StringVar(&o.clickhouse, "clickhouse", envOr("TOKENWATCH_TEST_CLICKHOUSE", "127.0.0.1:19000"), "ClickHouse native host:port")
	flag.StringVar(&o.bin, "bin", "bin/tokenwatch", "tokenwatch binary to run (go build -o bin/tokenwatch ./cmd/tokenwatch)")
	flag.StringVar(&o.cacheDir, "cache", ".cache/bench-e2e", "directory for generated corpora, configs and logs")
	flag.StringVar(&o.schema18, "schema18", "store/testdata/clickhouse18/schema.sql", "the store's schema for ClickHouse servers older than 20.x")
	size := flag.String("size", "1GB", "corpus size (bytes, or with KB/MB/GB)")
	flag.BoolVar(&o.small, "small", false, "quick check: a ~40 MB corpus (overrides -size)")
	flag.IntVar(&o.alertRate, "alert-rate", 20, "trigger lines (one alert each) produced per second while tokenwatch consumes")
	flag.IntVar(&o.partitions, "partitions", 4, "partitions of the auth and app topics")
	flag.Uint64Var(&o.seed, "seed", 1, "scenario seed")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's Kafka topics and ClickHouse database (deleted otherwise)")
	flag.BoolVar(&o.noStore, "no-clickhouse", false, "benchmark tokenwatch run without the ClickHouse stage (to see what the store costs)")
	flag.IntVar(&o.batchSize, "batch-size", 4096, "tokenwatch's ingest.kafka.batch_size (records per batch)")
	flag.IntVar(&o.inFlight, "in-flight", 2, "tokenwatch's pipeline.in_flight (batches read ahead)")
	flag.BoolVar(&o.noStateLog, "no-state-log", false, "run tokenwatch with anomaly.state_log disabled")
	flag.BoolVar(&o.demo, "demo", false, "run the demo scenario through Kafka and ClickHouse (make demo-stack) instead of the benchmark")
	flag.IntVar(&o.demoUsers, "users", 200, "demo mode: background users of the scenario")
	flag.StringVar(&o.database, "database", "tokenwatch", "demo mode: ClickHouse database (the dashboards read tokenwatch); the benchmark uses a fresh one per run")
	flag.StringVar(&o.chUser, "ch-user", envOr("CLICKHOUSE_USER", "default"), "ClickHouse user (docker compose: tokenwatch)")
	flag.StringVar(&o.chPassword, "ch-password", os.Getenv("CLICKHOUSE_PASSWORD"), "ClickHouse password (default $CLICKHOUSE_PASSWORD; docker compose: tokenwatch)")
	flag.StringVar(&o.timeout, "timeout", "60m", "give up after this long")
	cleanup := flag.Bool("delete-bench-topics", false, "delete every topic named tw-e2e-* (left by runs with -keep or interrupted runs) and exit")
	flag.Parse()
	n, err := parseSize(*size)
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "bench/e2e: -size %q: want a positive size such as 1GB or 200MB\n", *size)
		os.Exit(2)
	}
	o.size = n
	if o.small {
		o.size = 40 << 20
	}
	if *cleanup {
		if err := deleteTopics(o.brokers, "tw-e2e-"); err != nil {
			fmt.Fprintln(os.Stderr, "bench/e2e:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.demo {
		err = runDemo(ctx, o)
	} else {
		err = runBench(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/e2e:", err)
		var ue usageError
		if errors.Is(err, errFindings) {
			os.Exit(1)
		}
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errFindings: the demo missed a planted incident or alerted on benign traffic (exit 1).
var errFindings = errors.New("the demo missed a planted incident or raised a false alert (see above)")

// usageError is a problem with the environment (server unreachable, binary
// missing): exit 2.
type usageError struct{ error }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// parseSize reads "1GB", "200MB", "512KB" (powers of 1000) or a plain byte count.
func parseSize(s string) (int64, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suf)), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return int64(f * float64(mult)), nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
