package kafkalog

import (
	"errors"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"leader not available", kafka.LeaderNotAvailable, true},
		{"unknown topic or partition", kafka.UnknownTopicOrPartition, true},
		{"wrapped temporary", fmt.Errorf("write: %w", kafka.NotLeaderForPartition), true},
		{"message too large", kafka.MessageSizeTooLarge, false},
		{"not a kafka error", errors.New("boom"), false},
		{"batch of temporary errors", kafka.WriteErrors{nil, kafka.LeaderNotAvailable}, true},
		{"batch with a permanent error", kafka.WriteErrors{kafka.LeaderNotAvailable, kafka.MessageSizeTooLarge}, false},
	} {
		if got := Temporary(tc.err); got != tc.want {
			t.Errorf("%s: Temporary = %v, want %v", tc.name, got, tc.want)
		}
	}
}
