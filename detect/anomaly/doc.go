// Package anomaly is the per-token usage state of tokenwatch and the rules that
// judge each token use against it: impossible travel, concurrent replay, replay of
// a leaked token, use after revocation, an expired or unsigned JWT accepted, and
// the leak itself.
//
// It owns:
//   - Engine: state per token, keyed by fingerprint (or by issuer+jti for JWTs
//     that carry a jti, so a revocation by jti applies and a re-encoded JWT maps
//     to one state), sharded 2^n ways, bounded by a token cap with CLOCK (approximate LRU) eviction
//     and by expiry (exp + grace, or an idle TTL), all in event time;
//   - the rules (rules.go) and the alerts they raise, with deterministic ids,
//     evidence and a one-sentence summary (alert.go);
//   - the compact binary encodings of a token use and of a token's state, and the
//     Kafka scale-out: Repartitioner (a Stage that produces uses keyed by state
//     key) and Owner (a consumer group that owns the keys, runs the engine, and
//     keeps a compacted changelog it rebuilds from on partition assignment).
//
// It must not:
//   - read the wall clock for any decision (detected_at is the only wall-clock
//     field, from WithClock), so a replay gives the same alerts as live;
//   - hold or emit a raw token: it sees fingerprints, redacted previews and
//     sealed values only;
//   - deduplicate over time windows or deliver alerts: package alerts does the
//     suppression window with growing evidence; the engine only avoids raising an
//     identical alert twice (same type, token and networks).
//
// See docs/anomaly.md for every rule, threshold and its rationale.
package anomaly
