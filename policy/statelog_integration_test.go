//go:build integration

package policy

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// TestStateLogSurvivesRestart: a process sees a subject's first token and
// two leaks of an endpoint, persists its state to a real Kafka topic and
// dies; a new process restores the state from the topic, skips the replay of
// the uncommitted batch, and raises the scope_escalation of the subject's
// next token and the token_dispensary of the endpoint's third leak, with the
// ids and summaries an uninterrupted engine gives them.
func TestStateLogSurvivesRestart(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := StateLogConfig{Brokers: brokers, Topic: fmt.Sprintf("policy-statelog-%d", time.Now().UnixNano())}
	log := slog.New(slog.DiscardHandler)

	newStage := func() *StateLog {
		s, err := NewStateLog(ctx, cfg, newEngine(t, testPolicy), log)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Restore(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	leak := func(at time.Duration, sub string, off int64) tokenwatch.TokenUse {
		return use(at, func(u *tokenwatch.TokenUse) {
			u.Leak, u.Service, u.IP, u.JWT.Sub, u.Origin = true, "legacy-auth", netip.Addr{}, sub, tokenwatch.Origin{Source: "app", Partition: 0, Offset: off}
		})
	}
	first := []tokenwatch.TokenUse{
		use(0, func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"orders:read"} }),
		leak(time.Minute, "s1", 1), leak(2*time.Minute, "s2", 2),
	}
	second := []tokenwatch.TokenUse{
		use(time.Hour, func(u *tokenwatch.TokenUse) { u.JWT.Scope = []string{"orders:read", "profile:write"} }),
		leak(3*time.Minute, "s3", 3),
	}
	batch := func(uses []tokenwatch.TokenUse) *tokenwatch.Batch {
		return &tokenwatch.Batch{Uses: slices.Clone(uses)}
	}

	// The uninterrupted engine.
	a := newEngine(t, testPolicy)
	want := run(a, append(slices.Clone(first), second...)...)
	if got := types(want); !slices.Equal(got, []string{TypeScopeEscalation, TypeDispensary}) {
		t.Fatalf("uninterrupted findings %v", got)
	}

	s1 := newStage()
	b := batch(first)
	if err := s1.Process(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s1.Persist().Process(ctx, b); err != nil {
		t.Fatal(err)
	}
	if len(b.Alerts) != 0 {
		t.Fatalf("first batch raised %v", types(b.Alerts))
	}
	// kill -9: the first stage is abandoned (its writes were acked); the
	// batch was not committed and is read again.

	s2 := newStage()
	replay := batch(first)
	if err := s2.Process(ctx, replay); err != nil {
		t.Fatal(err)
	}
	if len(replay.Alerts) != 0 {
		t.Errorf("the replayed batch raised %v", types(replay.Alerts))
	}
	b2 := batch(second)
	if err := s2.Process(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if err := s2.Persist().Process(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if g, w := alertsJSON(t, b2.Alerts), alertsJSON(t, want); !slices.Equal(g, w) {
		t.Errorf("after the restore:\n got %v\nwant %v", g, w)
	}

	// A third process restores both batches' state: nothing fires again.
	s3 := newStage()
	again := batch(second)
	if err := s3.Process(ctx, again); err != nil {
		t.Fatal(err)
	}
	if len(again.Alerts) != 0 {
		t.Errorf("second restore, replayed batch raised %v", types(again.Alerts))
	}
}
