// Package pipeline runs batches from an ingest.Source through an ordered list of
// stages and acknowledges them back to the source: Next -> every Stage's Process
// -> Commit. It owns batching concurrency (the next batch is read while the
// current one is processed), retries of failed stages with bounded backoff,
// in-order commits, graceful shutdown, the pipeline metrics, and the findings
// sink that writes JSON lines.
//
// The package must not look at record content beyond what the sink writes (the
// finding contract fields, never Raw), and must never commit a batch that did not
// go through every stage: that is what makes delivery at-least-once.
package pipeline
