//go:build integration

package e2e

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestKill9ExactlyOnce kills tokenwatch with SIGKILL at seeded random points
// of a run over the scenario traffic (3 kills), restarting it each time with
// the same configuration and consumer groups, and checks what users see
// afterwards against an uninterrupted baseline run over the same topics:
// every table holds exactly the baseline's row ids, each once after the
// dedup the dashboards use (count() FINAL == uniqExact(row_id)), and every
// alert reached the webhook receiver, deduplicated by webhook-id.
func TestKill9ExactlyOnce(t *testing.T) {
	tr, topics := scenarioTopics(t)
	base := startBaseline(t) // runs beside the killed one when not done yet

	seed := envSeed()
	rng := rand.New(rand.NewPCG(seed, 8))
	t.Logf("seed %d (rerun with E2E_SEED=%d)", seed, seed)

	r := newRun(t, "kill", tr, topics, true)
	r.start(t)
	// Random points of the stream: kill once the group's committed lag has
	// fallen below a random fraction of the records (then a random few
	// hundred ms more), so every kill lands mid-run with work in flight.
	const kills = 3
	total := int64(len(tr.recs))
	fracs := []float64{0.55 + 0.3*rng.Float64(), 0.3 + 0.2*rng.Float64(), 0.12 + 0.12*rng.Float64()}
	for i, f := range fracs {
		target := int64(f * float64(total))
		waitFor(t, "progress before kill", 3*time.Minute, func() bool {
			if r.p.exited() {
				t.Fatalf("tokenwatch exited before kill %d: %v\n%s", i+1, r.p.err, tail(r.logPath))
			}
			return lag(t, r.cfg.group, topics.parts) <= target
		}, func() string { return tail(r.logPath) })
		d := time.Duration(rng.IntN(800)) * time.Millisecond
		time.Sleep(d)
		r.p.kill()
		left := lag(t, r.cfg.group, topics.parts)
		t.Logf("kill %d/%d (lag below %d, +%s): %d of %d records not committed", i+1, kills, target, d, left, total)
		r.start(t)
	}
	r.waitDone(t, 5*time.Minute)
	got := r.result(t)
	want := finishBaseline(t, base)
	if want == nil {
		t.Fatal("no baseline")
	}
	got.checkExactlyOnce(t, "killed run")
	t.Logf("killed run: %s; %d alerts delivered (distinct webhook-ids) in %d requests", got.stats, got.hookIDs, got.requests)

	for _, tb := range rowTables {
		if len(got.rowIDs[tb]) != len(want.rowIDs[tb]) || got.stats.final[tb] != want.stats.final[tb] {
			t.Errorf("%s: %d rows FINAL (%d ids) after the kills, %d in the baseline", tb, got.stats.final[tb], len(got.rowIDs[tb]), want.stats.final[tb])
		}
		missing, extra := 0, 0
		for id := range want.rowIDs[tb] {
			if !got.rowIDs[tb][id] {
				missing++
			}
		}
		for id := range got.rowIDs[tb] {
			if !want.rowIDs[tb][id] {
				extra++
			}
		}
		if missing+extra > 0 {
			t.Errorf("%s: %d baseline row ids missing after the kills, %d extra", tb, missing, extra)
		}
	}
	// Alerts: every incident the baseline reported is reported after the
	// kills, as often, and nothing else. The anomaly and policy engines'
	// state survives the kills (anomaly.state_log and policy.state_log,
	// written after the outbox), and a revocation read after the use it
	// covers still raises post_revocation_use. Alert ids are exact for most
	// alerts, but a restart reads the topics in another interleaving, so a
	// concurrent_replay pair can be judged on other uses of the same token
	// and a token_dispensary's last subject can be another leak: the same
	// incident under another id (the uninterrupted baseline varies the same
	// way from run to run). Those are logged. docs/reliability.md.
	t.Run("alerts_vs_baseline", func(t *testing.T) {
		missing, extra := diffKeys(want.delivered, got.delivered)
		if len(missing)+len(extra) > 0 {
			types := map[string]int{}
			for _, k := range missing {
				types[want.types[k]]++
			}
			xtypes := map[string]int{}
			for _, k := range extra {
				xtypes[got.types[k]]++
			}
			t.Logf("alert ids: %d of %d baseline alert/update ids not delivered after the kills (by type %v), %d new (by type %v); incidents are compared below",
				len(missing), len(want.delivered), types, len(extra), xtypes)
		}
		for k, ids := range want.incidents {
			if n := len(got.incidents[k]); n != len(ids) {
				t.Errorf("incident %s: %d alerts after the kills, %d in the baseline", k, n, len(ids))
			}
		}
		for k, ids := range got.incidents {
			if want.incidents[k] == nil {
				t.Errorf("incident %s: %d alerts after the kills, none in the baseline", k, len(ids))
			}
		}
		t.Logf("%d incidents in the baseline, %d after the kills", len(want.incidents), len(got.incidents))
	})
}
