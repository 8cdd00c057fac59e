//go:build integration

package anomaly

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// TestStateLogSurvivesRestart: a process that saw the London use of a token
// dies; a new process restores the state from the topic and catches the
// Sydney use 20 minutes later as impossible travel, and a revocation seen
// before the restart still applies after it.
func TestStateLogSurvivesRestart(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := StateLogConfig{Brokers: brokers, Topic: fmt.Sprintf("anomaly-statelog-%d", time.Now().UnixNano())}
	log := slog.New(slog.DiscardHandler)

	newStage := func() *StateLog {
		e, err := New(DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewStateLog(ctx, cfg, e, log)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Restore(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}

	first := newStage()
	b := &tokenwatch.Batch{
		Uses:        []tokenwatch.TokenUse{use(1, 0, london), use(2, 0, london, withJTI("https://idp.example.com", "j-2"))},
		Revocations: []tokenwatch.Revocation{{JTI: "j-2", Issuer: "https://idp.example.com", Time: t0.Add(time.Minute)}},
	}
	if err := first.Process(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := first.Persist().Process(ctx, b); err != nil {
		t.Fatal(err)
	}
	if len(b.Alerts) != 0 {
		t.Fatalf("first batch raised %d alerts", len(b.Alerts))
	}
	// kill -9: the first stage is simply abandoned (its writes were acked).

	second := newStage()
	if n := second.engine.Len(); n != 2 {
		t.Fatalf("restored %d tokens, want 2", n)
	}
	b2 := &tokenwatch.Batch{Uses: []tokenwatch.TokenUse{
		use(1, 20*time.Minute, sydney),
		use(2, 10*time.Minute, london, withJTI("https://idp.example.com", "j-2")),
	}}
	if err := second.Process(ctx, b2); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, a := range b2.Alerts {
		got[a.Type] = true
	}
	if !got[tokenwatch.AlertImpossibleTravel] || !got[tokenwatch.AlertPostRevocationUse] {
		t.Errorf("after restore: alerts %v, want impossible_travel and post_revocation_use", b2.Alerts)
	}
}
