// Package store writes what tokenwatch sees into ClickHouse, for the SOC's
// dashboards: versioned idempotent migrations (single node or cluster, from the
// same files), and a batched Writer over the native protocol
// (github.com/ClickHouse/clickhouse-go/v2) that is a tokenwatch.Stage.
//
// Tables: token_events (one row per TokenUse), findings (leak findings with
// JWT claims), alerts (the alert contract, evidence as JSON), revocations and
// deliveries, plus aggregate tables fed by materialized views. docs/store.md
// describes them, the retention settings and the deduplication design.
//
// The package owns the schema and the rows; it must not decide what is an
// alert or a leak (detect and alerts do), and it never receives a raw token:
// TokenUse, Alert and Revocation carry fingerprints and redacted previews only,
// and the sealed token of a Finding is never written.
//
// Delivery guarantee: Writer.Process returns only after every row built from
// the batch is acknowledged by ClickHouse, so a pipeline that commits source
// offsets after Process gets at-least-once storage; deterministic row ids and
// ReplacingMergeTree make the replay after a crash invisible to dashboards.
package store
