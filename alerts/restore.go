package alerts

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/tokenwatch/tokenwatch"
)

// queueReader is implemented by queues that can read back what they hold: the
// outbox stage rebuilds its policy state from it at start.
type queueReader interface {
	// readSince calls fn with every message value the queue held at the call
	// that may have been written at or after since, oldest first per Kafka
	// partition (file: in file order). at is the message's own timestamp, zero
	// when it has none (files). fn must not retain v.
	readSince(ctx context.Context, since time.Time, fn func(v []byte, at time.Time)) error
}

// readSince implements queueReader: per partition, from the offset of the first
// message timestamped at or after since (ListOffsets by time) to the end offset
// seen at the call.
func (q *KafkaQueue) readSince(ctx context.Context, since time.Time, fn func(v []byte, at time.Time)) error {
	brokers := q.brokers
	topic := q.w.Topic
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("metadata of topic %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		if len(md.Topics) == 1 && errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition) {
			return nil // nothing written yet
		}
		return fmt.Errorf("topic %s: not found (%v)", topic, topicErr(md))
	}
	var last, at []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		last = append(last, kafka.LastOffsetOf(p.ID))
		at = append(at, kafka.TimeOffsetOf(p.ID, since))
	}
	// Two requests: a broker may refuse one partition twice in one request.
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: last}})
	if err != nil {
		return fmt.Errorf("end offsets of topic %s: %w", topic, err)
	}
	to, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: at}})
	if err != nil {
		return fmt.Errorf("offsets at %s of topic %s: %w", since.UTC().Format(time.RFC3339), topic, err)
	}
	end := map[int]int64{}
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			return fmt.Errorf("end offset of %s/%d: %w", topic, p.Partition, p.Error)
		}
		end[p.Partition] = p.LastOffset
	}
	parts := slices.Sorted(maps.Keys(end))
	start := map[int]int64{}
	for _, p := range to.Topics[topic] {
		if p.Error != nil {
			return fmt.Errorf("offset at %s of %s/%d: %w", since.UTC().Format(time.RFC3339), topic, p.Partition, p.Error)
		}
		start[p.Partition] = -1 // no message at or after since
		for off := range p.Offsets {
			start[p.Partition] = off
		}
	}
	for _, part := range parts {
		from, ok := start[part]
		if !ok || from < 0 || from >= end[part] {
			continue
		}
		if err := readPartition(ctx, brokers, topic, part, from, end[part], fn); err != nil {
			return err
		}
	}
	return nil
}

// readPartition reads offsets [from, end) of one partition.
func readPartition(ctx context.Context, brokers []string, topic string, part int, from, end int64, fn func(v []byte, at time.Time)) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   brokers,
		Topic:     topic,
		Partition: part,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   250 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("seek %s/%d to %d: %w", topic, part, from, err)
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %s/%d at %d of [%d, %d): %w", topic, part, r.Offset(), from, end, err)
		}
		if m.Offset >= end {
			return nil
		}
		fn(m.Value, m.Time)
		if m.Offset >= end-1 {
			return nil
		}
	}
}

// readSince implements queueReader: the whole file as it is at the call (a
// file outbox has no index by time; envelopes carry their own).
func (q *FileQueue) readSince(ctx context.Context, _ time.Time, fn func(v []byte, at time.Time)) error {
	f, err := os.Open(q.path)
	if err != nil {
		return fmt.Errorf("open alerts queue file %s: %w", q.path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", q.path, err)
	}
	br := bufio.NewReaderSize(io.LimitReader(f, st.Size()), 64<<10)
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return fmt.Errorf("read %s: %w", q.path, ctx.Err())
		}
		line, err := br.ReadBytes('\n')
		if v := bytes.TrimSpace(line); len(v) > 0 {
			fn(v, time.Time{})
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", q.path, err)
		}
	}
}

// seedEnvelope is the newest emission of one (type, fingerprint) read back.
type seedEnvelope struct {
	alert tokenwatch.Alert
	exp   time.Time
	at    time.Time
}

// restoreSet keeps the newest emission per key of what is read back, bounded
// to about twice max keys (the oldest are dropped first, as Seed would).
type restoreSet struct {
	max  int
	keys map[policyKey]seedEnvelope
}

func (s *restoreSet) add(e seedEnvelope) {
	k := policyKey{e.alert.Type, e.alert.Fingerprint}
	if old, ok := s.keys[k]; ok && (e.at.Before(old.at) || (e.at.Equal(old.at) && e.alert.ID == old.alert.ID && e.alert.Update <= old.alert.Update)) {
		return
	}
	s.keys[k] = e
	if len(s.keys) > 2*s.max {
		s.keys = mapOfNewest(s.sorted()[len(s.keys)-s.max:])
	}
}

// sorted returns the emissions oldest first.
func (s *restoreSet) sorted() []seedEnvelope {
	out := make([]seedEnvelope, 0, len(s.keys))
	for _, e := range s.keys {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b seedEnvelope) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.alert.Type, b.alert.Type), cmp.Compare(a.alert.Fingerprint, b.alert.Fingerprint))
	})
	return out
}

func mapOfNewest(es []seedEnvelope) map[policyKey]seedEnvelope {
	m := make(map[policyKey]seedEnvelope, len(es))
	for _, e := range es {
		m[policyKey{e.alert.Type, e.alert.Fingerprint}] = e
	}
	return m
}

// decodeSeed decodes one outbox message for restoring: the envelope's alert,
// the token expiry and when it was emitted (enqueued_at, else the message time,
// else the alert's detected_at).
func decodeSeed(v []byte, msgTime time.Time) (seedEnvelope, error) {
	var env Envelope
	if err := json.Unmarshal(v, &env); err != nil {
		return seedEnvelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	a := env.Alert
	if a.ID == "" || a.Type == "" || a.Fingerprint == "" || a.Update < 0 {
		return seedEnvelope{}, errors.New("envelope without alert id, type or fingerprint, or with a negative update")
	}
	e := seedEnvelope{alert: a, at: env.EnqueuedAt}
	if len(env.Sealed) > 0 {
		e.alert.Sealed = env.Sealed
	}
	if env.TokenExp != nil {
		e.exp = *env.TokenExp
	}
	if e.at.IsZero() {
		e.at = msgTime
	}
	if e.at.IsZero() || e.at.Unix() <= 0 {
		e.at = a.DetectedAt
	}
	return e, nil
}

// RestoreStats is what a restore read back and seeded.
type RestoreStats struct {
	Read      int // envelopes decoded within the window
	Malformed int // messages that did not decode (skipped)
	Seeded    int // (type, fingerprint) keys the policy holds after seeding
}

// Restore rebuilds the policy state from what the outbox queue holds: the
// alerts and updates emitted within the last dedupe window seed the policy (see
// Policy.Seed), so a repeat after a restart is merged as the next update of the
// alert that went out before it. NewOutbox calls it, bounded by
// alerts.policy.restore_timeout; on failure the policy stays empty (a warning is
// logged). Malformed messages are counted and skipped. It does nothing for a
// queue that cannot be read back, or when the dedupe window or the timeout is 0.
func (o *Outbox) Restore(ctx context.Context) (RestoreStats, error) {
	var st RestoreStats
	qr, ok := o.q.(queueReader)
	if !ok || o.policy.cfg.DedupeWindow <= 0 {
		return st, nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	since := now.Add(-o.policy.cfg.DedupeWindow)
	set := &restoreSet{max: o.policy.cfg.MaxKeys, keys: map[policyKey]seedEnvelope{}}
	var firstErr error
	err := qr.readSince(ctx, since, func(v []byte, at time.Time) {
		e, err := decodeSeed(v, at)
		if err != nil {
			st.Malformed++
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		if e.at.Before(since) {
			return
		}
		st.Read++
		set.add(e)
	})
	restoreMalformed.Add(float64(st.Malformed))
	if st.Malformed > 0 {
		o.log.Warn("alerts outbox: skipped malformed outbox messages while restoring the policy state", "count", st.Malformed, "first_err", firstErr)
	}
	if err != nil {
		return st, fmt.Errorf("restore alert policy state: %w", err)
	}
	for _, e := range set.sorted() {
		o.policy.Seed(e.alert, e.exp, e.at)
	}
	st.Seeded = o.policy.Len()
	restoredKeys.Set(float64(st.Seeded))
	return st, nil
}

// restore runs Restore at start, bounded by restore_timeout.
func (o *Outbox) restore() {
	if o.restoreTimeout <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.restoreTimeout)
	defer cancel()
	start := time.Now()
	st, err := o.Restore(ctx)
	if err != nil {
		o.log.Warn("alerts outbox: could not rebuild the policy state from the outbox; starting empty (repeats of alerts sent before the restart go out as new alerts)", "err", err)
		return
	}
	if st.Read > 0 || st.Malformed > 0 {
		o.log.Info("alerts outbox: policy state rebuilt from the outbox", "keys", st.Seeded, "envelopes", st.Read, "malformed", st.Malformed, "took", time.Since(start).Round(time.Millisecond))
	}
}
