//go:build integration

package anomaly

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// collector is a sink stage that keeps every alert.
type collector struct {
	mu     sync.Mutex
	alerts []tokenwatch.Alert
	uses   int
}

func (c *collector) Process(_ context.Context, b *tokenwatch.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alerts = append(c.alerts, b.Alerts...)
	c.uses += len(b.Uses)
	return nil
}

func (c *collector) find(typ string) (tokenwatch.Alert, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.alerts {
		if a.Type == typ {
			return a, true
		}
	}
	return tokenwatch.Alert{}, false
}

type runningOwner struct {
	owner  *Owner
	sink   *collector
	cancel context.CancelFunc
	done   chan error
}

func startOwner(t *testing.T, cfg ScaleOutConfig) *runningOwner {
	t.Helper()
	e := newTestEngine(t)
	sink := &collector{}
	o, err := NewOwner(cfg, e, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ro := &runningOwner{owner: o, sink: sink, cancel: cancel, done: make(chan error, 1)}
	go func() { ro.done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ro.done
	})
	return ro
}

// poll calls cond until it is true or the deadline passes.
func poll(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func changelogEnd(t *testing.T, brokers []string, topic string, p int) int64 {
	conn, err := kafka.DialLeader(context.Background(), "tcp", brokers[0], topic, p)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, last, err := conn.ReadOffsets()
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// TestOwnersRebalance: two owners share the uses topic; the owner that saw
// the first use of an impossible-travel incident (and a revocation) leaves the
// group; the owner that takes its partitions over rebuilds their state from
// the changelog and still catches the incident on the second use.
func TestOwnersRebalance(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	cfg := DefaultScaleOutConfig()
	cfg.Brokers = brokers
	cfg.UsesTopic = testenv.CreateTopic(t, "anomaly-uses", 4)
	cfg.ChangelogTopic = testenv.CreateTopic(t, "anomaly-state", 4)
	cfg.GroupID = "anomaly-owners-" + cfg.UsesTopic
	cfg.BatchWait = 5 * time.Millisecond

	a, b := startOwner(t, cfg), startOwner(t, cfg)
	poll(t, "both owners to get partitions", 60*time.Second, func() bool {
		return len(a.owner.Owned()) > 0 && len(b.owner.Owned()) > 0 && len(a.owner.Owned())+len(b.owner.Owned()) == 4
	})
	t.Logf("owner A: %v, owner B: %v", a.owner.Owned(), b.owner.Owned())

	ctx := context.Background()
	rep, err := NewRepartitioner(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()

	// First use of the incident (token 1, Frankfurt) and a revocation of token 2.
	first := &tokenwatch.Batch{
		Uses:        []tokenwatch.TokenUse{use(1, 0, frankfurt), use(2, 0, paris)},
		Revocations: []tokenwatch.Revocation{{Fingerprint: fp(2), Time: t0.Add(time.Minute), Reason: "logout"}},
	}
	if err := rep.Process(ctx, first); err != nil {
		t.Fatal(err)
	}
	var leaver, stayer *runningOwner
	poll(t, "the first use to be owned", 30*time.Second, func() bool {
		for _, o := range []*runningOwner{a, b} {
			if _, ok := o.owner.Engine().Snapshot(nil, fp(1)); ok {
				leaver = o
			}
		}
		return leaver != nil
	})
	stayer = a
	if leaver == a {
		stayer = b
	}
	p := PartitionOf(fp(1), 4)
	if !slices.Contains(leaver.owner.Owned(), p) {
		t.Fatalf("token 1 hashes to partition %d, not owned by the owner holding its state (%v)", p, leaver.owner.Owned())
	}
	if _, ok := stayer.owner.Engine().Snapshot(nil, fp(1)); ok {
		t.Fatal("the other owner holds token 1's state too")
	}
	// Wait until the leaver wrote token 1's state to the changelog and
	// committed (the sink saw both uses; offsets commit right after the changelog).
	poll(t, "changelog record for token 1", 30*time.Second, func() bool {
		return changelogEnd(t, brokers, cfg.ChangelogTopic, p) > 0
	})

	// The leaver leaves; the stayer takes every partition over.
	leaver.cancel()
	select {
	case err := <-leaver.done:
		if err != nil {
			t.Fatalf("owner Run: %v", err)
		}
		leaver.done <- nil // for Cleanup
	case <-time.After(60 * time.Second):
		t.Fatal("owner did not leave")
	}
	poll(t, "the remaining owner to own all partitions", 60*time.Second, func() bool {
		return len(stayer.owner.Owned()) == 4
	})
	if _, ok := stayer.owner.Engine().Snapshot(nil, fp(1)); !ok {
		t.Fatal("token 1's state was not rebuilt from the changelog")
	}

	// Second use, 11 minutes later from Sydney; token 2 used after its revocation.
	second := &tokenwatch.Batch{Uses: []tokenwatch.TokenUse{use(1, 11*time.Minute, sydney), use(2, 5*time.Minute, paris)}}
	if err := rep.Process(ctx, second); err != nil {
		t.Fatal(err)
	}
	var travelAlert tokenwatch.Alert
	poll(t, "impossible_travel from the owner that took over", 30*time.Second, func() bool {
		var ok bool
		travelAlert, ok = stayer.sink.find(tokenwatch.AlertImpossibleTravel)
		return ok
	})
	if len(travelAlert.Evidence) != 2 || travelAlert.Evidence[0].City != "Frankfurt am Main" || travelAlert.Evidence[1].City != "Sydney" {
		t.Errorf("evidence: %+v", travelAlert.Evidence)
	}
	if ev := travelAlert.Evidence[0]; ev.Topic != "auth-logs" || ev.Offset == nil || *ev.Offset != 1_000_000 {
		t.Errorf("evidence of the first use lost its origin across the rebalance: %+v", ev)
	}
	poll(t, "post_revocation_use from the owner that took over", 30*time.Second, func() bool {
		_, ok := stayer.sink.find(tokenwatch.AlertPostRevocationUse)
		return ok
	})

	// The same incident processed by one engine gives the same alert id.
	e := newTestEngine(t)
	ref := run(e, use(1, 0, frankfurt), use(1, 11*time.Minute, sydney))
	if len(ref) != 1 || ref[0].ID != travelAlert.ID {
		t.Errorf("alert id across the rebalance %s, single engine %v", travelAlert.ID, ref)
	}
}

// TestRepartitionerRoundTrip: what the repartitioner produces decodes to the
// same uses, keyed by state key on the partition PartitionOf names.
func TestRepartitionerRoundTrip(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	cfg := DefaultScaleOutConfig()
	cfg.Brokers = brokers
	cfg.UsesTopic = testenv.CreateTopic(t, "anomaly-rt", 3)
	ctx := context.Background()
	rep, err := NewRepartitioner(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	b := &tokenwatch.Batch{
		Uses:        []tokenwatch.TokenUse{use(1, 0, frankfurt), use(2, time.Minute, v6Priv1, opaque()), use(3, 0, place{}, asLeak("billing"))},
		Revocations: []tokenwatch.Revocation{{JTI: "j", Time: t0}},
	}
	// A fresh topic may be unknown to the producer's metadata for a moment; a
	// stage's error means "retry the batch", which is what the pipeline does.
	var err2 error
	poll(t, "the batch to be produced", 20*time.Second, func() bool {
		err2 = rep.Process(ctx, b)
		if err2 != nil {
			t.Logf("produce (will retry): %v", err2)
		}
		return err2 == nil
	})
	got := 0
	revs := 0
	for p := 0; p < 3; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: cfg.UsesTopic, Partition: p, MaxWait: 100 * time.Millisecond})
		end := changelogEnd(t, brokers, cfg.UsesTopic, p)
		for off := int64(0); off < end; off++ {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			m, err := r.ReadMessage(rctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			switch m.Value[0] {
			case msgUse:
				var u tokenwatch.TokenUse
				if err := DecodeUse(m.Value[1:], &u); err != nil {
					t.Fatal(err)
				}
				k := KeyOf(&u)
				if string(m.Key) != k.String() || PartitionOf(k, 3) != p {
					t.Errorf("use keyed %s on partition %d, want %s on %d", m.Key, p, k, PartitionOf(k, 3))
				}
				got++
			case msgRevocation:
				revs++
			default:
				t.Errorf("unknown message kind %q", m.Value[0])
			}
		}
		r.Close()
	}
	if got != 3 || revs != 3 {
		t.Errorf("read %d uses and %d revocations, want 3 and 3 (one per partition)", got, revs)
	}
}
