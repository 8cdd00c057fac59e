package store

import (
	"context"

	"github.com/tokenwatch/tokenwatch/alerts"
)

// RecordDelivery implements alerts.DeliveryRecorder: the alert dispatcher
// reports the final outcome of every delivery (webhook, RFC 7009, SSF) and the
// writer buffers it as a deliveries row (flushed by size, time, Flush, Close).
// The dispatcher has its own durable outbox, so a row lost in a crash loses a
// record of an attempt, never an alert. Wire it with
// alerts.WithRecorder(writer).
func (w *Writer) RecordDelivery(ctx context.Context, d alerts.Delivery) error {
	return w.AddDeliveries(ctx, DeliveryOf(d))
}

// DeliveryOf converts the dispatcher's delivery outcome to a deliveries row.
func DeliveryOf(d alerts.Delivery) Delivery {
	return Delivery{
		AlertID:    d.AlertID,
		Sink:       d.Sink,
		SinkKind:   d.SinkType,
		Attempt:    d.Attempts,
		StatusCode: d.Status,
		Outcome:    d.Outcome,
		Error:      d.Error,
		Time:       d.At,
		Duration:   d.Latency,
	}
}

var _ alerts.DeliveryRecorder = (*Writer)(nil)
