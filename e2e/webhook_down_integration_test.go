//go:build integration

package e2e

import (
	"testing"
	"time"
)

// webhookDownFor is how long the receiver refuses every request.
const webhookDownFor = 2 * time.Minute

// TestWebhookDownMinutes keeps the SOAR webhook answering 503 for two
// minutes while tokenwatch raises every alert of the scenario, then brings it
// back: every alert of the outbox is delivered afterwards (none lost, none
// dead-lettered), and every request for one alert update carries one
// webhook-id, so the receiver's dedup leaves each alert once.
func TestWebhookDownMinutes(t *testing.T) {
	tr, topics := scenarioTopics(t)
	r := newRun(t, "hookdown", tr, topics, false)
	r.cfg.telemetry = freeAddr(t)
	r.cfg.hook.setDown(true)
	r.start(t)

	var firstRefused time.Time
	waitFor(t, "the first refused delivery", 2*time.Minute, func() bool {
		r.cfg.hook.mu.Lock()
		defer r.cfg.hook.mu.Unlock()
		return r.cfg.hook.refused > 0
	}, func() string { return tail(r.logPath) })
	firstRefused = time.Now()
	waitFor(t, "every source record committed (alerts in the outbox)", 3*time.Minute, func() bool {
		return lag(t, r.cfg.group, topics.parts) == 0
	}, func() string { return tail(r.logPath) })
	if l := lag(t, r.cfg.group+"-dispatch", map[string]int{r.cfg.outbox: 1}); l == 0 {
		t.Fatal("the dispatcher committed the outbox while the receiver refused everything")
	}
	for time.Since(firstRefused) < webhookDownFor {
		if r.p.exited() {
			t.Fatalf("tokenwatch exited while the receiver was down: %v\n%s", r.p.err, tail(r.logPath))
		}
		time.Sleep(time.Second)
	}
	r.cfg.hook.mu.Lock()
	refused := r.cfg.hook.refused
	r.cfg.hook.mu.Unlock()
	outbox := outboxAlerts(t, r.cfg.outbox)
	circuit, _ := metric(r.cfg.telemetry, "tokenwatch_alerts_circuit_open")
	t.Logf("receiver down %s: %d requests refused for %d alerts in the outbox (circuit open: %v)", webhookDownFor, refused, len(outbox), circuit)
	r.cfg.hook.setDown(false)
	up := time.Now()
	waitFor(t, "every alert delivered after the receiver came back", 3*time.Minute, func() bool {
		return r.cfg.hook.count() >= len(outbox)
	}, func() string { return tail(r.logPath) })
	t.Logf("all %d alerts delivered %s after the receiver came back", len(outbox), time.Since(up).Round(time.Second))
	r.waitDone(t, 2*time.Minute)

	got := r.result(t)
	got.checkExactlyOnce(t, "webhook outage run")
	if dl := readTopic(t, r.cfg.dlq); len(dl) > 0 {
		t.Errorf("%d alerts were dead-lettered during the outage", len(dl))
	}
	_, alerts, requests, _ := r.cfg.hook.delivered()
	checkScenarioAlerts(t, tr, alerts)
	t.Logf("%d alerts, %d distinct webhook-ids, %d requests in all", len(outbox), got.hookIDs, requests)
}
