// Package alerts turns the tokenwatch.Alert values raised by the anomaly engine into
// deliveries that SOAR playbooks and identity providers can act on, and guarantees
// that none is lost between detection and delivery.
//
// It owns, in pipeline order:
//
//   - Policy: severity overrides per alert type, suppression of repeats of the same
//     (type, fingerprint) within a dedupe window (one replay storm becomes one alert
//     plus a few updates with growing evidence), and routing of alerts to named sinks
//     by type, severity and service.
//   - Outbox: a tokenwatch.Stage that writes every alert that passed the policy to a
//     durable queue (a Kafka topic written with acks=all, or an fsynced JSON-lines
//     file) before the pipeline commits its source offsets.
//   - Dispatcher: reads the outbox with its own consumer group, delivers each alert to
//     every routed sink with retries (exponential backoff with jitter, Retry-After), a
//     circuit breaker per sink, a dead-letter queue after the maximum attempts or age,
//     and commits the outbox offset only once every routed sink has the alert or its
//     dead letter.
//   - Sinks: Standard Webhooks signed HTTP webhooks with Go templates (raw JSON,
//     Splunk SOAR, Cortex XSOAR, Slack), RFC 7009 token revocation, and Shared Signals
//     (RFC 8417 Security Event Tokens pushed per RFC 8935).
//   - Sealer: AES-256-GCM sealing of a token value for RFC 7009 revocation, the only
//     way a token value ever leaves the scanner.
//
// The package must never write a token in clear: not in alert bodies, envelopes,
// dead letters, logs, errors or metrics. The revocation sink opens a sealed token
// only to build the request body and wipes that buffer when the request is done.
// It does not detect anything and does not write to ClickHouse: deliveries are
// reported through the DeliveryRecorder interface, which the store may implement.
package alerts
