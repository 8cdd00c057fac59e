// Package ingest owns the sources of the pipeline: Kafka topics read through a
// consumer group, files (plain or gzip, whole directories, tail -f style follow)
// and stdin. A source fills pooled tokenwatch.Batch values with Records whose Raw
// bytes it owns, tags each record with its Origin and its SourceKind, and on
// Commit acknowledges the records downstream stages have finished with (Kafka
// offsets, file progress).
//
// The package does not look inside records: log-format detection and field
// extraction live in ingest/parse, credential detection in detect. It must never
// log, count or label anything by record content, because records may hold
// credentials in clear.
//
// Delivery is at-least-once: a record is acknowledged only after the batch that
// carried it went through every stage, so a crash or a rebalance replays the
// unacknowledged tail and never skips a record. See docs/ingest.md.
package ingest
