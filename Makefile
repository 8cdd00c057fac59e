# tokenwatch developer and CI entry points. `make help` lists the targets.
#
# `make test` starts the real servers the integration tests need (Kafka in KRaft mode,
# Debian's clickhouse-server 18.16, chDB in a venv), runs vet, unit tests and
# integration tests (build tag `integration`), and stops the servers again, also on
# failure. Everything is installed by scripts/ into .cache/ (git-ignored).

SHELL       := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
CACHE     := $(CURDIR)/.cache
FUZZTIME  ?= 10s
STATICCHECK_VERSION ?= v0.8.2

# Timeouts keep a hung test from eating CI's 90 minutes (2 cores).
UNIT_TIMEOUT        ?= 10m
INTEGRATION_TIMEOUT ?= 20m
GOTEST_FLAGS        ?=

# Ports of the test servers; exported so scripts/kafka.sh and scripts/clickhouse.sh
# (also when internal/testenv restarts clickhouse-server) use the same ones.
export KAFKA_PORT            ?= 19092
export KAFKA_CONTROLLER_PORT ?= 19093
export CLICKHOUSE_TCP_PORT   ?= 19000
export CLICKHOUSE_HTTP_PORT  ?= 18123
TEST_KAFKA        ?= 127.0.0.1:$(KAFKA_PORT)
TEST_CLICKHOUSE   ?= 127.0.0.1:$(CLICKHOUSE_TCP_PORT)
TEST_CHDB_PYTHON  ?= $(CACHE)/venv/bin/python
INTEGRATION_ENV = TOKENWATCH_TEST_KAFKA=$(TEST_KAFKA) \
	TOKENWATCH_TEST_CLICKHOUSE=$(TEST_CLICKHOUSE) \
	TOKENWATCH_TEST_CHDB_PYTHON=$(TEST_CHDB_PYTHON)

# promtool (scripts/promtool.sh install) for rule tests, in unit and integration runs;
# tests that need it skip when PROMTOOL is empty.
export PROMTOOL ?= $(shell command -v promtool 2>/dev/null)

.PHONY: help test test-unit test-integration vet servers-up servers-down servers-status \
	deps build lint fuzz demo bench bench-e2e clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

test: ## servers up -> vet -> unit tests -> integration tests -> servers down (also on failure)
	@trap '$(MAKE) --no-print-directory servers-down' EXIT; \
	$(MAKE) --no-print-directory servers-up; \
	$(MAKE) --no-print-directory vet; \
	rc=0; \
	$(MAKE) --no-print-directory test-unit || rc=$$?; \
	$(MAKE) --no-print-directory test-integration || rc=$$?; \
	if ((rc != 0)); then echo "make test: FAILED (see the FAIL lines above)"; fi; \
	exit $$rc

vet: ## go vet ./... (with and without the integration tag)
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

test-unit: ## go test ./... (no servers needed)
	scripts/gotest.sh unit -count=1 -timeout $(UNIT_TIMEOUT) $(GOTEST_FLAGS) ./...

test-integration: ## integration tests against the servers started by servers-up (run it first)
	$(INTEGRATION_ENV) scripts/gotest.sh integration -tags integration -count=1 -p 1 \
		-timeout $(INTEGRATION_TIMEOUT) $(GOTEST_FLAGS) ./...

deps: ## install OS packages and downloads the tests need (idempotent, cached in .cache/)
	scripts/clickhouse.sh install
	scripts/kafka.sh fetch
	scripts/chdb.sh install
	scripts/promtool.sh install

# Both servers start with empty data (Kafka always, ClickHouse unless CLICKHOUSE_KEEP_DATA=1);
# a server that is already running is left as it is.
servers-up: deps ## start Kafka and clickhouse-server, install chDB
	scripts/kafka.sh start
	CLICKHOUSE_FRESH=$(if $(CLICKHOUSE_KEEP_DATA),0,1) scripts/clickhouse.sh start

servers-down: ## stop Kafka and clickhouse-server
	-scripts/kafka.sh stop
	-scripts/clickhouse.sh stop

servers-status: ## show whether the test servers are running
	-scripts/kafka.sh status
	-scripts/clickhouse.sh status

build: ## build bin/tokenwatch
	$(GO) build -trimpath -o bin/tokenwatch ./cmd/tokenwatch

lint: ## gofmt -l, go vet, staticcheck, shellcheck of scripts/ and .ci/run
	@out="$$(gofmt -l $$(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go'))"; \
	if [[ -n "$$out" ]]; then echo "gofmt -l: these files need gofmt:"; echo "$$out"; exit 1; fi
	$(MAKE) --no-print-directory vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags integration ./...
	bash -c 'source scripts/lib.sh && apt_install shellcheck'
	shellcheck -x scripts/*.sh .ci/run

fuzz: ## run every Fuzz* target for FUZZTIME (default 10s) each; fails when any target fails (scripts/fuzz.sh)
	GO=$(GO) scripts/fuzz.sh $(FUZZTIME)

demo: ## generate traffic with planted token incidents and watch tokenwatch catch them (no servers needed)
	$(GO) run ./cmd/tokenwatch demo

bench: ## Go benchmarks of every package (plus bench/scan.sh when present)
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...
	@if [[ -x bench/scan.sh ]]; then bench/scan.sh; fi

# E2E_ARGS go to bench/e2e.sh: -small (~40 MB, about a minute) or -size 1GB (the default).
E2E_ARGS ?=
bench-e2e: ## end-to-end benchmarks against real Kafka (bench/kafka.sh, bench/e2e.sh), servers started and stopped; E2E_ARGS=-small for a quick check
	@scripts=(); for f in bench/kafka.sh bench/e2e.sh; do if [[ -x "$$f" ]]; then scripts+=("$$f"); fi; done; \
	if (($${#scripts[@]} == 0)); then \
		echo "make bench-e2e: neither bench/kafka.sh nor bench/e2e.sh exists yet; nothing to run."; exit 2; fi; \
	trap '$(MAKE) --no-print-directory servers-down' EXIT; \
	$(MAKE) --no-print-directory servers-up; \
	for f in "$${scripts[@]}"; do \
		args=(); if [[ "$$f" == bench/e2e.sh ]]; then args=($(E2E_ARGS)); fi; \
		echo "== $$f $${args[*]}"; $(INTEGRATION_ENV) "$$f" "$${args[@]}"; done

# Kafka and ClickHouse of `make servers-up` (or docker compose up: same Kafka port;
# ClickHouse on 127.0.0.1:9000 with user tokenwatch: DEMO_CLICKHOUSE=127.0.0.1:9000
# CLICKHOUSE_USER=tokenwatch CLICKHOUSE_PASSWORD=tokenwatch make demo-stack).
DEMO_KAFKA      ?= $(TEST_KAFKA)
DEMO_CLICKHOUSE ?= $(TEST_CLICKHOUSE)

.PHONY: demo-stack
demo-stack: ## the demo's traffic through running Kafka and ClickHouse (dashboards fill); starts no server
	@for hp in $(DEMO_KAFKA) $(DEMO_CLICKHOUSE); do \
		if ! (exec 3<>"/dev/tcp/$${hp%:*}/$${hp##*:}") 2>/dev/null; then \
			echo "make demo-stack: nothing answers on $$hp."; \
			echo "  Start the servers first: make servers-up   (Kafka 127.0.0.1:19092, ClickHouse 127.0.0.1:19000)"; \
			echo "  or: docker compose up -d, then DEMO_CLICKHOUSE=127.0.0.1:9000 CLICKHOUSE_USER=tokenwatch CLICKHOUSE_PASSWORD=tokenwatch make demo-stack"; \
			exit 2; \
		fi; \
	done
	$(GO) build -trimpath -o bin/tokenwatch ./cmd/tokenwatch
	$(GO) build -trimpath -o bin/bench-e2e ./bench/e2e
	bin/bench-e2e -demo -bin bin/tokenwatch -brokers $(DEMO_KAFKA) -clickhouse $(DEMO_CLICKHOUSE)

clean: ## remove build output and server data (keeps downloads in .cache)
	rm -rf bin out $(CACHE)/kafka-data $(CACHE)/clickhouse-data $(CACHE)/test-logs

.PHONY: bench-kafka
bench-kafka: ## consume throughput: tokenwatch pipeline vs. bare kafka-go reader on real Kafka (bench/kafka.sh), servers started and stopped
	trap '$(MAKE) --no-print-directory servers-down' EXIT; \
	$(MAKE) --no-print-directory servers-up; \
	$(INTEGRATION_ENV) bench/kafka.sh
