package alerts

import (
	"context"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Envelope is one outbox message: the Kafka value (key = the fingerprint), or
// one line of the outbox file.
type Envelope struct {
	Alert tokenwatch.Alert `json:"alert"`
	// Sealed is the AES-256-GCM sealed token (base64 in JSON), present only when
	// the alert is routed to an rfc7009 sink.
	Sealed []byte `json:"sealed,omitempty"`
	// TokenExp is the token's expiry when known; nothing is revoked after it.
	TokenExp *time.Time `json:"token_exp,omitempty"`
	// EnqueuedAt is when the outbox accepted the alert; retry.max_age counts from it.
	EnqueuedAt time.Time `json:"enqueued_at"`
}

// DeadLetter is one dead-letter message: the envelope, the sink that could not
// take it and why.
type DeadLetter struct {
	Envelope  Envelope  `json:"envelope"`
	Sink      string    `json:"sink"`
	WebhookID string    `json:"webhook_id"`
	Error     string    `json:"error"`
	Status    int       `json:"status,omitempty"`
	Attempts  int       `json:"attempts"`
	DeadAt    time.Time `json:"dead_at"`
}

// Delivery is one delivery outcome, as reported to a DeliveryRecorder.
type Delivery struct {
	AlertID   string
	Update    int
	Type      string
	Sink      string
	SinkType  string
	WebhookID string
	// Outcome is delivered, dead, gone, skipped, expired or disabled (final
	// outcomes; retries are counted in metrics only).
	Outcome  string
	Status   int
	Attempts int
	Error    string
	// Latency is from enqueue to the final outcome.
	Latency time.Duration
	At      time.Time
}

// DeliveryRecorder receives the final outcome of every delivery (the store writes
// them to ClickHouse). Implementations must be safe for concurrent use; an error
// is logged and does not stop delivery.
type DeliveryRecorder interface {
	RecordDelivery(ctx context.Context, d Delivery) error
}
