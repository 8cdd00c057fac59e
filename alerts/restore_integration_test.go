//go:build integration

package alerts

import (
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/tokenwatch/tokenwatch"
)

// TestKafkaOutboxRestoresPolicyState: one outbox stage writes an alert, an
// update of it and another alert to a real Kafka outbox topic (3 partitions)
// and dies without flushing; a malformed message follows. A new stage on the
// same topic rebuilds its policy from the topic and merges repeats as the next
// updates of the original ids instead of new alerts.
func TestKafkaOutboxRestoresPolicyState(t *testing.T) {
	c := kafkaConfig(t, t.TempDir())
	c.Policy.DedupeWindow = 10 * time.Minute
	c.Policy.UpdateInterval = 0
	replay := testAlert(1, tokenwatch.AlertLeakedTokenReplay)
	leak := testAlert(2, tokenwatch.AlertTokenLeak)

	q1 := NewKafkaQueue(c.Outbox.Brokers, c.Outbox.Topic, 10*time.Second)
	ob1 := NewOutbox(c, q1) // restores from the empty topic
	if n := ob1.Policy().Len(); n != 0 {
		t.Fatalf("first stage restored %d keys from an empty topic", n)
	}
	process(t, ob1, replay, leak)
	process(t, ob1, withID(replay, "repeat-1")) // update 1 of al-0001
	q1.Close()                                  // no Flush: as after kill -9

	w := &kafka.Writer{Addr: kafka.TCP(c.Outbox.Brokers...), Topic: c.Outbox.Topic, RequiredAcks: kafka.RequireAll}
	if err := w.WriteMessages(t.Context(), kafka.Message{Key: []byte("x"), Value: []byte(`{"alert":`), Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	w.Close()

	q2 := NewKafkaQueue(c.Outbox.Brokers, c.Outbox.Topic, 10*time.Second)
	defer q2.Close()
	ob2 := NewOutbox(c, q2)
	st, err := ob2.Restore(t.Context()) // again, to see the figures (idempotent)
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 3 || st.Malformed != 1 || ob2.Policy().Len() != 2 {
		t.Fatalf("restore read %d envelopes, %d malformed, %d keys; want 3, 1, 2", st.Read, st.Malformed, ob2.Policy().Len())
	}
	process(t, ob2, withID(replay, "repeat-2"), withID(leak, "repeat-3"))

	src, err := NewBoundedKafkaSource(t.Context(), c.Outbox.Brokers, c.Outbox.Topic, "verify-"+filepath.Base(c.Outbox.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got []string
	for {
		it, err := src.Fetch(t.Context())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e, err := decodeSeed(it.Value, time.Time{}); err == nil {
			got = append(got, e.alert.ID+"/"+itoa(e.alert.Update))
		}
	}
	slices.Sort(got)
	if want := []string{"al-0001/0", "al-0001/1", "al-0001/2", "al-0002/0", "al-0002/1"}; !slices.Equal(got, want) {
		t.Fatalf("outbox holds %v, want %v (repeats after the restart as updates of the same ids)", got, want)
	}
}
