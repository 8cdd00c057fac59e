package alerts

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// TestStandardWebhooksKnownAnswer checks the signer against the test vector of
// the Standard Webhooks reference libraries.
func TestStandardWebhooksKnownAnswer(t *testing.T) {
	s, err := NewSigner([]string{testSecret})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
}

// TestDeliveryThroughOutages: the receiver answers 500, then 429 with
// Retry-After, then hangs past the timeout, then recovers. Every alert arrives,
// signed, and every repeated delivery of an alert carries the same webhook-id.
func TestDeliveryThroughOutages(t *testing.T) {
	const n = 40
	start := time.Now()
	rc := newReceiver(t, func(i int, r *http.Request, body []byte) (int, map[string]string, time.Duration) {
		el := time.Since(start)
		switch {
		case el < 150*time.Millisecond:
			return 500, nil, 0
		case el < 300*time.Millisecond:
			return 429, map[string]string{"Retry-After": "1"}, 0
		case el < 450*time.Millisecond:
			return 200, nil, time.Second // longer than the sink timeout
		case i%7 == 3:
			return 503, nil, 0 // sporadic failures after recovery
		}
		return 200, nil, 0
	})
	dir := t.TempDir()
	c := fastConfig(dir, webhookSinkConfig("soar", rc.URL))
	c.Sinks[0].Timeout = 300 * time.Millisecond // the receiver hangs for 1 s in one phase
	c.CircuitBreaker.Failures = 3
	var alerts []tokenwatch.Alert
	for i := range n {
		alerts = append(alerts, testAlert(i, tokenwatch.AlertLeakedTokenReplay))
	}
	enqueue(t, c, alerts...)
	stop := startDispatcher(t, c, nil)
	waitFor(t, 30*time.Second, "all alerts delivered", func() bool { return len(uniqueDelivered(t, rc)) == n })
	waitFor(t, 30*time.Second, "the whole outbox committed", func() bool { return committedAll(c) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkDeliveries(t, rc, n)
	if dl := readDeadLetters(t, c.DeadLetter.File); len(dl) != 0 {
		t.Fatalf("%d dead letters, want none", len(dl))
	}
	// The outbox is fully committed: a new dispatcher sends nothing more.
	before := len(rc.requests())
	stop = startDispatcher(t, c, nil)
	time.Sleep(100 * time.Millisecond)
	stop()
	if after := len(rc.requests()); after != before {
		t.Fatalf("a restarted dispatcher sent %d more requests after everything was committed", after-before)
	}
}

// committedAll reports whether the file outbox's cursor is at its end.
func committedAll(c Config) bool {
	st, err := os.Stat(c.Outbox.File)
	if err != nil {
		return false
	}
	b, err := os.ReadFile(c.Dispatcher.StateFile + ".cursor")
	return err == nil && strings.TrimSpace(string(b)) == strconv.FormatInt(st.Size(), 10)
}

// uniqueDelivered returns the alert ids answered 2xx.
func uniqueDelivered(t testing.TB, rc *receiver) map[string]bool {
	out := map[string]bool{}
	for _, r := range rc.ok() {
		id, _ := alertIDOf(t, r.Body)
		out[id] = true
	}
	return out
}

// checkDeliveries: n distinct alerts delivered, every request verifies, and all
// requests for one alert share one webhook-id (and distinct alerts do not).
func checkDeliveries(t *testing.T, rc *receiver, n int) {
	t.Helper()
	idOf := map[string]string{}
	owner := map[string]string{}
	for _, r := range rc.requests() {
		if err := verifyStandardWebhook(testSecret, r.Header, r.Body, time.Now()); err != nil {
			t.Fatalf("request for %s: %v", r.ID, err)
		}
		if ua := r.Header.Get("User-Agent"); ua != DefaultUserAgent {
			t.Fatalf("User-Agent = %q", ua)
		}
		aid, upd := alertIDOf(t, r.Body)
		key := aid + "/" + strconv.Itoa(upd)
		if prev, ok := idOf[key]; ok && prev != r.ID {
			t.Fatalf("alert %s sent with webhook-ids %s and %s", key, prev, r.ID)
		}
		idOf[key] = r.ID
		if o, ok := owner[r.ID]; ok && o != key {
			t.Fatalf("webhook-id %s used for %s and %s", r.ID, o, key)
		}
		owner[r.ID] = key
	}
	if got := len(uniqueDelivered(t, rc)); got != n {
		t.Fatalf("%d alerts delivered, want %d", got, n)
	}
}

// TestDispatcherKilledMidDelivery stops the dispatcher abruptly while requests
// hang and restarts it: nothing is lost and duplicates share the webhook-id.
func TestDispatcherKilledMidDelivery(t *testing.T) {
	const n = 30
	rc := newReceiver(t, func(i int, r *http.Request, body []byte) (int, map[string]string, time.Duration) {
		if i%3 == 0 {
			return 200, nil, 250 * time.Millisecond // answered, but late: the kill may come first
		}
		return 200, nil, 0
	})
	dir := t.TempDir()
	c := fastConfig(dir, webhookSinkConfig("hook", rc.URL))
	c.Dispatcher.Concurrency = 4
	var alerts []tokenwatch.Alert
	for i := range n {
		alerts = append(alerts, testAlert(i, tokenwatch.AlertConcurrentReplay))
	}
	enqueue(t, c, alerts...)
	for round := 0; round < 3; round++ {
		stop := startDispatcher(t, c, nil)
		time.Sleep(120 * time.Millisecond)
		stop() // abrupt: in-flight deliveries are cancelled, not committed
	}
	rc.setRespond(nil)
	stop := startDispatcher(t, c, nil)
	waitFor(t, 30*time.Second, "all alerts delivered", func() bool { return len(uniqueDelivered(t, rc)) == n })
	stop()
	checkDeliveries(t, rc, n)
}

// TestCircuitBreaker: after Failures consecutive failures the circuit opens and
// the sink gets no request until the cooldown passes; the half-open probe then
// closes it.
func TestCircuitBreaker(t *testing.T) {
	b := newBreaker("cb-test", BreakerConfig{Failures: 3, Cooldown: time.Minute})
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := b.allow(now); !ok {
			t.Fatalf("attempt %d refused while closed", i)
		}
		b.record(false, now)
	}
	if ok, at := b.allow(now.Add(time.Second)); ok || !at.Equal(now.Add(time.Minute)) {
		t.Fatalf("open circuit: allow = %v, retry at %v", ok, at)
	}
	if !b.isOpen() {
		t.Fatal("isOpen = false after 3 failures")
	}
	probe := now.Add(time.Minute)
	if ok, _ := b.allow(probe); !ok {
		t.Fatal("half-open probe refused")
	}
	if ok, _ := b.allow(probe); ok {
		t.Fatal("second concurrent probe allowed")
	}
	b.record(false, probe) // failed probe: open again
	if ok, _ := b.allow(probe.Add(time.Second)); ok {
		t.Fatal("allowed right after a failed probe")
	}
	p2 := probe.Add(time.Minute)
	if ok, _ := b.allow(p2); !ok {
		t.Fatal("second probe refused")
	}
	b.record(true, p2)
	if ok, _ := b.allow(p2); !ok || b.isOpen() {
		t.Fatal("circuit not closed after a successful probe")
	}
}

// TestCircuitBreakerLimitsRequests: a sink that is down receives about
// Failures requests per cooldown, not one per alert per backoff.
func TestCircuitBreakerLimitsRequests(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, map[string]string, time.Duration) { return 500, nil, 0 })
	dir := t.TempDir()
	c := fastConfig(dir, webhookSinkConfig("down", rc.URL))
	c.Sinks[0].Timeout = time.Minute // every failure is the receiver's 500, never a client timeout
	c.CircuitBreaker = BreakerConfig{Failures: 3, Cooldown: time.Hour}
	var alerts []tokenwatch.Alert
	for i := range 20 {
		alerts = append(alerts, testAlert(i, tokenwatch.AlertTokenLeak))
	}
	enqueue(t, c, alerts...)
	stop := startDispatcher(t, c, nil)
	waitFor(t, 30*time.Second, "3 failed requests", func() bool { return len(rc.requests()) >= 3 })
	time.Sleep(200 * time.Millisecond)
	stop()
	// Concurrent deliveries may each have passed allow() before the third
	// failure was recorded; no more than the concurrency can slip through.
	if got := len(rc.requests()); got > 3+c.Dispatcher.Concurrency {
		t.Fatalf("a sink with an open circuit received %d requests", got)
	}
	if dl := readDeadLetters(t, c.DeadLetter.File); len(dl) != 0 {
		t.Fatalf("alerts dead-lettered while the circuit was open: %d", len(dl))
	}
}

// TestGoneDisablesEndpoint: HTTP 410 dead-letters the alert, disables the
// endpoint (persisted), later alerts are dead-lettered without a request, and a
// configuration change re-enables it.
func TestGoneDisablesEndpoint(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, map[string]string, time.Duration) { return 410, nil, 0 })
	dir := t.TempDir()
	c := fastConfig(dir, webhookSinkConfig("gone", rc.URL))
	c.Dispatcher.Concurrency = 1
	enqueue(t, c, testAlert(1, tokenwatch.AlertTokenLeak))
	stop := startDispatcher(t, c, nil)
	waitFor(t, 30*time.Second, "dead letter", func() bool { return len(readDeadLetters(t, c.DeadLetter.File)) == 1 })
	stop()
	st, err := openState(c.Dispatcher.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Disabled) != 1 {
		t.Fatalf("state file holds %d disabled endpoints, want 1", len(st.Disabled))
	}
	// Restart with the same config: the next alert is not sent.
	enqueue(t, c, testAlert(2, tokenwatch.AlertTokenLeak))
	stop = startDispatcher(t, c, nil)
	waitFor(t, 30*time.Second, "second dead letter", func() bool { return len(readDeadLetters(t, c.DeadLetter.File)) == 2 })
	stop()
	if got := len(rc.requests()); got != 1 {
		t.Fatalf("disabled endpoint received %d requests, want 1", got)
	}
	dls := readDeadLetters(t, c.DeadLetter.File)
	if dls[0].Status != 410 || dls[1].Error == "" {
		t.Fatalf("dead letters = %+v", dls)
	}
	// A configuration change (a new secret) re-enables the endpoint.
	rc.setRespond(nil)
	c.Sinks[0].Secrets = append(c.Sinks[0].Secrets, "whsec_"+"QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")
	enqueue(t, c, testAlert(3, tokenwatch.AlertTokenLeak))
	stop = startDispatcher(t, c, nil)
	waitFor(t, 30*time.Second, "delivery after config change", func() bool { return len(rc.ok()) == 1 })
	stop()
}

// TestMaxAttemptsDeadLetter: a sink that keeps failing gets MaxAttempts
// requests, then the alert is dead-lettered with the last error, and the outbox
// moves on.
func TestMaxAttemptsDeadLetter(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, map[string]string, time.Duration) { return 502, nil, 0 })
	dir := t.TempDir()
	c := fastConfig(dir, webhookSinkConfig("flaky", rc.URL))
	c.Retry.MaxAttempts = 4
	c.CircuitBreaker.Failures = 100
	enqueue(t, c, testAlert(7, tokenwatch.AlertImpossibleTravel))
	stop := startDispatcher(t, c, nil)
	waitFor(t, 30*time.Second, "dead letter", func() bool { return len(readDeadLetters(t, c.DeadLetter.File)) == 1 })
	stop()
	dl := readDeadLetters(t, c.DeadLetter.File)[0]
	if dl.Attempts != 4 || dl.Status != 502 || dl.Sink != "flaky" || dl.Envelope.Alert.ID != "al-0007" || dl.WebhookID != WebhookID("al-0007", 0, "flaky") {
		t.Fatalf("dead letter = %+v", dl)
	}
	if got := len(rc.requests()); got != 4 {
		t.Fatalf("%d requests, want 4", got)
	}
	if b, _ := os.ReadFile(c.Dispatcher.StateFile + ".cursor"); len(b) == 0 {
		t.Fatal("outbox not committed after the dead letter")
	}

	// Replay re-sends it to the recovered sink with the same webhook-id.
	rc.setRespond(nil)
	dlq2, _ := NewFileQueue(c.DeadLetter.File)
	d, err := NewDispatcher(c, dlq2, nil, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewFileSource(c.DeadLetter.File, c.DeadLetter.File+".cursor", true)
	if err != nil {
		t.Fatal(err)
	}
	n, err := d.Replay(t.Context(), src)
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	ok := rc.ok()
	if len(ok) != 1 || ok[0].ID != dl.WebhookID {
		t.Fatalf("replayed requests = %+v", ok)
	}
}

// TestRetryAfterHonoured: the dispatcher waits the Retry-After the receiver
// asks for (an HTTP-date here) instead of its own short backoff.
func TestRetryAfterHonoured(t *testing.T) {
	var first time.Time
	rc := newReceiver(t, func(i int, r *http.Request, b []byte) (int, map[string]string, time.Duration) {
		if i == 0 {
			first = time.Now()
			return 503, map[string]string{"Retry-After": first.Add(2 * time.Second).UTC().Format(http.TimeFormat)}, 0
		}
		return 200, nil, 0
	})
	dir := t.TempDir()
	c := fastConfig(dir, webhookSinkConfig("ra", rc.URL))
	enqueue(t, c, testAlert(1, tokenwatch.AlertTokenLeak))
	stop := startDispatcher(t, c, nil)
	waitFor(t, 30*time.Second, "delivery", func() bool { return len(rc.ok()) == 1 })
	stop()
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	// The configured backoff alone would retry within 40 ms; the receiver asked
	// for a date 2 s ahead (whole seconds), so the retry must not come before it.
	retryAt := first.Add(2 * time.Second).Truncate(time.Second)
	if reqs[1].At.Before(retryAt) {
		t.Fatalf("retried at %s, before the Retry-After date %s", reqs[1].At.Format(time.StampMilli), retryAt.Format(time.StampMilli))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		in   string
		want time.Duration
	}{
		"seconds":   {"120", 2 * time.Minute},
		"zero":      {"0", 0},
		"negative":  {"-5", 0},
		"empty":     {"", 0},
		"junk":      {"soon", 0},
		"http-date": {"Wed, 25 Nov 2026 08:00:30 GMT", 30 * time.Second},
		"past date": {"Wed, 25 Nov 2026 07:00:00 GMT", 0},
		"huge":      {"99999999999999", time.Duration(1<<31) * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			if got := parseRetryAfter(tc.in, now); got != tc.want {
				t.Fatalf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "", "x", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, s string) {
		if d := parseRetryAfter(s, now); d < 0 {
			t.Fatalf("negative delay %s for %q", d, s)
		}
	})
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	c := DefaultConfig()
	c.Retry.InitialBackoff = 100 * time.Millisecond
	c.Retry.MaxBackoff = time.Second
	c.Retry.Jitter = 0.5
	d := &Dispatcher{cfg: c}
	for n := 1; n <= 12; n++ {
		base := min(c.Retry.InitialBackoff<<(n-1), c.Retry.MaxBackoff)
		for range 50 {
			got := d.backoff(n)
			if got > base || got < base/2 {
				t.Fatalf("backoff(%d) = %s outside [%s, %s]", n, got, base/2, base)
			}
		}
	}
}

func TestTrackerCommitsInOrder(t *testing.T) {
	tr := &tracker{parts: map[int][]*Item{}}
	items := []*Item{{Partition: 0, Offset: 1}, {Partition: 0, Offset: 2}, {Partition: 0, Offset: 3}, {Partition: 1, Offset: 9}}
	for _, it := range items {
		tr.add(it)
	}
	tr.markDone(items[1])
	if r := tr.ready(); len(r) != 0 {
		t.Fatalf("ready with a gap: %+v", r)
	}
	tr.markDone(items[0])
	tr.markDone(items[3])
	r := tr.ready()
	offs := []int64{}
	for _, it := range r {
		offs = append(offs, it.Offset)
	}
	slices.Sort(offs)
	if !slices.Equal(offs, []int64{2, 9}) {
		t.Fatalf("ready offsets = %v, want [2 9]", offs)
	}
	tr.markDone(items[2])
	if r := tr.ready(); len(r) != 1 || r[0].Offset != 3 {
		t.Fatalf("ready = %+v", r)
	}

	// A rebalance re-reads partition 1 from offset 5: the old in-flight item
	// (offset 12) finishing must not commit past the re-read ones.
	stale := &Item{Partition: 1, Offset: 12}
	tr.add(stale)
	reread := &Item{Partition: 1, Offset: 10}
	tr.add(reread)
	tr.markDone(stale)
	if r := tr.ready(); len(r) != 0 {
		t.Fatalf("a stale item decided a commit: %+v", r)
	}
	tr.markDone(reread)
	if r := tr.ready(); len(r) != 1 || r[0] != reread {
		t.Fatalf("ready = %+v", r)
	}
}

// TestUpdatesKeepOrderPerToken: an update is not delivered before its first
// alert, even when the first is held up and other alerts flow past it.
func TestUpdatesKeepOrderPerToken(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(i int, r *http.Request, body []byte) (int, map[string]string, time.Duration) {
		if bytes.Contains(body, []byte(`"id":"al-0001"`)) && !bytes.Contains(body, []byte(`"update"`)) {
			<-release
		}
		return 200, nil, 0
	})
	dir := t.TempDir()
	c := fastConfig(dir, webhookSinkConfig("hook", rc.URL))
	c.Sinks[0].Timeout = time.Minute
	first := testAlert(1, tokenwatch.AlertConcurrentReplay)
	upd := first
	upd.Update = 1
	enqueue(t, c, first, testAlert(2, tokenwatch.AlertTokenLeak), upd, testAlert(3, tokenwatch.AlertTokenLeak))
	stop := startDispatcher(t, c, nil)
	waitFor(t, 30*time.Second, "the other alerts", func() bool { return len(rc.ok()) == 2 })
	for _, r := range rc.requests() {
		if id, u := alertIDOf(t, r.Body); id == "al-0001" && u == 1 {
			t.Fatal("the update was sent while its first alert was still in flight")
		}
	}
	close(release)
	waitFor(t, 30*time.Second, "4 deliveries", func() bool { return len(rc.ok()) == 4 })
	stop()
	var order []int
	for _, r := range rc.requests() {
		if id, u := alertIDOf(t, r.Body); id == "al-0001" {
			order = append(order, u)
		}
	}
	if !slices.Equal(order, []int{0, 1}) {
		t.Fatalf("al-0001 updates arrived in order %v", order)
	}
}
