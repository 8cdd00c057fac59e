//go:build integration

package e2e

import (
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// rssBoundKiB is the memory bound asserted while ClickHouse is down. The
// configured bounds that keep memory flat: pipeline.in_flight 2 (3 batches
// of at most ingest.kafka.batch_size 500 records / batch_bytes 8 MiB exist),
// clickhouse.max_pending_rows 500000 (rows built and not yet acknowledged),
// the Kafka reader's queue_capacity 8192 messages and fetch_max_bytes 16 MiB.
// 1 GiB is generous: the process is expected at well under 200 MiB.
const rssBoundKiB = 1 << 20

// TestClickHouseDown60s stops clickhouse-server for 60 s while tokenwatch is
// in the middle of a run and traffic keeps arriving: the store retries and
// blocks (backpressure), memory stays bounded, the consumer group commits
// nothing it has not stored (lag stays > 0 throughout), and after the server
// is back every row is there (the baseline's counts, each row once) and
// every alert was delivered.
func TestClickHouseDown60s(t *testing.T) {
	tr := scenarioTraffic(t)
	want := baseline(t) // before the outage: the reference is an undisturbed run
	topics := createScenarioTopics(t, "e2e-chdown")
	half := len(tr.recs) / 2
	produce(t, topics, tr.recs, 0, half)

	r := newRun(t, "chdown", tr, topics, true)
	r.cfg.telemetry = freeAddr(t)
	r.start(t)
	waitFor(t, "the first rows in ClickHouse", 2*time.Minute, func() bool {
		n, err := r.cfg.db.tryCount("SELECT count() FROM DB.token_events")
		return err == nil && n > 0
	}, func() string { return tail(r.logPath) })

	testenv.StopClickHouse(t)
	down := time.Now()
	t.Logf("clickhouse-server stopped; producing the second half of the traffic (%d records)", len(tr.recs)-half)
	produce(t, topics, tr.recs, half, len(tr.recs))

	var maxRSS, samples int64
	minLag := int64(-1)
	// Keep the server down for the whole outage, sampling as we wait (a
	// duration of the scenario, not a speed assertion).
	for outageEnd := down.Add(60 * time.Second); time.Now().Before(outageEnd); {
		if r.p.exited() {
			t.Fatalf("tokenwatch exited while ClickHouse was down: %v\n%s", r.p.err, tail(r.logPath))
		}
		rss, err := r.p.rssKiB()
		if err != nil {
			t.Fatalf("RSS: %v", err)
		}
		maxRSS, samples = max(maxRSS, rss), samples+1
		if samples%10 == 0 {
			l := lag(t, r.cfg.group, topics.parts)
			if minLag < 0 || l < minLag {
				minLag = l
			}
			if l == 0 {
				t.Fatalf("the group committed every offset while ClickHouse was down: rows not stored were acknowledged")
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	insertErrs, _ := metric(r.cfg.telemetry, "tokenwatch_store_insert_errors_total")
	t.Logf("ClickHouse down 60 s: peak RSS %d MiB over %d samples (bound %d MiB); smallest lag %d records; %v failed INSERT attempts so far",
		maxRSS>>10, samples, rssBoundKiB>>10, minLag, insertErrs)
	if maxRSS > rssBoundKiB {
		t.Errorf("peak RSS %d KiB while ClickHouse was down, bound %d KiB", maxRSS, rssBoundKiB)
	}
	testenv.StartClickHouse(t)
	up := time.Now()
	r.waitDone(t, 4*time.Minute)
	t.Logf("caught up %s after ClickHouse came back", time.Since(up).Round(time.Second))

	got := r.result(t)
	got.checkExactlyOnce(t, "ClickHouse outage run")
	t.Logf("after the outage: %s", got.stats)
	for _, tb := range rowTables {
		if got.stats.final[tb] != want.stats.final[tb] || got.stats.uniq[tb] != want.stats.uniq[tb] {
			t.Errorf("%s: %d rows FINAL / %d row ids after the outage, baseline %d", tb, got.stats.final[tb], got.stats.uniq[tb], want.stats.final[tb])
		}
	}
	_, alerts, _, _ := r.cfg.hook.delivered()
	checkScenarioAlerts(t, tr, alerts)
}
