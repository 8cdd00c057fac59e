package anomaly

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// TestOutOfOrder: a late event is judged against its neighbours in event time,
// and the alert is the same (id, evidence, summary) as with in-order arrival.
func TestOutOfOrder(t *testing.T) {
	inOrder := run(newTestEngine(t), use(1, 0, frankfurt), use(1, 11*time.Minute, sydney))
	late := run(newTestEngine(t), use(1, 11*time.Minute, sydney), use(1, 0, frankfurt))
	if len(inOrder) != 1 || len(late) != 1 {
		t.Fatalf("alerts: in order %v, late %v", types(inOrder), types(late))
	}
	a, b := inOrder[0], late[0]
	if a.ID != b.ID || !a.EventTime.Equal(b.EventTime) || a.Evidence[0].City != b.Evidence[0].City || a.Evidence[1].City != b.Evidence[1].City {
		t.Errorf("late arrival changed the alert:\n%+v\n%+v", a, b)
	}
	// A late event between two close uses: Frankfurt 10:00, Frankfurt 10:20
	// and a late Sydney 10:10 between them.
	got := run(newTestEngine(t), use(1, 0, frankfurt), use(1, 20*time.Minute, frankfurt), use(1, 10*time.Minute, sydney))
	if !slices.Equal(types(got), []string{travel}) {
		t.Errorf("late middle event: %v", types(got))
	}
	// A late event that makes an innocent sequence: New York at 16:00 arrives
	// before London at 08:00; 8 h apart is a flight.
	got = run(newTestEngine(t), use(1, 8*time.Hour, newYork), use(1, 0, london))
	if len(got) != 0 {
		t.Errorf("late flight: %v", types(got))
	}
}

// scenario is a day of mixed traffic over many tokens with planted incidents.
func scenario() []tokenwatch.TokenUse {
	rng := rand.New(rand.NewPCG(7, 11))
	places := []place{frankfurt, berlinHome, berlinLTE, munichCorp, sydney, london, newYork, sanFran, paris, moscow, v6Priv1, private10}
	var uses []tokenwatch.TokenUse
	for tok := byte(1); tok < 60; tok++ {
		home := places[rng.IntN(len(places))]
		at := time.Duration(rng.IntN(3600)) * time.Second
		for i := 0; i < 20; i++ {
			p := home
			if rng.IntN(10) == 0 {
				p = places[rng.IntN(len(places))]
			}
			opts := []useOpt{}
			if rng.IntN(15) == 0 {
				opts = append(opts, withStatus(401))
			}
			if rng.IntN(40) == 0 {
				opts = append(opts, asLeak("billing"))
			}
			uses = append(uses, use(tok, at, p, opts...))
			at += time.Duration(rng.IntN(1800)) * time.Second
		}
	}
	slices.SortStableFunc(uses, func(a, b tokenwatch.TokenUse) int { return a.Time.Compare(b.Time) })
	// Shuffle a little: events up to 5 positions late.
	for i := range uses {
		j := min(len(uses)-1, i+rng.IntN(5))
		uses[i], uses[j] = uses[j], uses[i]
	}
	return uses
}

// TestReplayDeterministic: the same input twice gives identical alerts, and
// detected_at is the only field that follows the clock.
func TestReplayDeterministic(t *testing.T) {
	uses := scenario()
	revs := []tokenwatch.Revocation{{Fingerprint: fp(3), Time: t0.Add(3 * time.Hour)}, {JTI: "nope", Time: t0}}
	runAll := func(now time.Time) []tokenwatch.Alert {
		cfg := DefaultConfig()
		cfg.Shards = 8
		e, err := New(cfg, WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		b := &tokenwatch.Batch{Uses: slices.Clone(uses), Revocations: revs}
		if err := e.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		return b.Alerts
	}
	first := runAll(fixedNow)
	second := runAll(fixedNow.Add(time.Hour))
	if len(first) < 5 {
		t.Fatalf("scenario raised only %d alerts: %v", len(first), types(first))
	}
	if len(first) != len(second) {
		t.Fatalf("replay raised %d alerts, live %d", len(second), len(first))
	}
	for i := range first {
		a, b := first[i], second[i]
		if !b.DetectedAt.Equal(fixedNow.Add(time.Hour)) {
			t.Errorf("detected_at not from the clock: %v", b.DetectedAt)
		}
		b.DetectedAt = a.DetectedAt
		if !reflect.DeepEqual(a, b) {
			t.Errorf("alert %d differs:\n%+v\n%+v", i, a, b)
		}
	}
	ids := map[string]bool{}
	for _, a := range first {
		if ids[a.ID] {
			t.Errorf("duplicate alert id %s (%s)", a.ID, a.Type)
		}
		ids[a.ID] = true
	}
}

// TestProcessEventTimeOrder: Process observes a batch in event-time order and
// applies its revocations first.
func TestProcessEventTimeOrder(t *testing.T) {
	e := newTestEngine(t)
	b := &tokenwatch.Batch{
		Uses: []tokenwatch.TokenUse{use(1, 11*time.Minute, sydney), use(2, 10*time.Minute, paris), use(1, 0, frankfurt)},
		Revocations: []tokenwatch.Revocation{
			{Fingerprint: fp(2), Time: t0.Add(time.Minute), Reason: "logout"},
		},
	}
	if err := e.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(types(b.Alerts), []string{revokedUse, travel}) {
		t.Fatalf("alerts %v", types(b.Alerts))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Process(ctx, &tokenwatch.Batch{}); err == nil {
		t.Error("Process ignored a cancelled context")
	}
}

// TestReencodedJWT: two encodings of one JWT (different fingerprints, same
// issuer and jti) share one state.
func TestReencodedJWT(t *testing.T) {
	e := newTestEngine(t)
	got := run(e, use(1, 0, frankfurt, withJTI("https://idp.example.com", "abc")),
		use(2, 11*time.Minute, sydney, withJTI("https://idp.example.com", "abc")))
	if !slices.Equal(types(got), []string{travel}) {
		t.Fatalf("alerts %v", types(got))
	}
	if e.Len() != 1 {
		t.Errorf("Len = %d, want 1 state", e.Len())
	}
	if got[0].Fingerprint != fp(2).String() {
		t.Errorf("fingerprint %s, want the triggering use's", got[0].Fingerprint)
	}
}

func TestRevocationBeforeFirstSighting(t *testing.T) {
	e := newTestEngine(t)
	e.Revoke(tokenwatch.Revocation{JTI: "j-9", Issuer: "https://idp.example.com", Time: t0}, nil)
	e.Revoke(tokenwatch.Revocation{Time: t0}, nil)                             // names no token: ignored
	e.Revoke(tokenwatch.Revocation{Fingerprint: fp(1)}, nil)                   // no time: ignored
	e.Revoke(tokenwatch.Revocation{JTI: "j-9", Time: t0.Add(-time.Hour)}, nil) // jti only, earlier
	got := run(e, use(1, 2*time.Minute, berlinHome, withJTI("https://idp.example.com", "j-9")))
	if !slices.Equal(types(got), []string{revokedUse}) {
		t.Fatalf("alerts %v", types(got))
	}
	if !strings.Contains(got[0].Summary, "1 hour 2 minutes after it was revoked") {
		t.Errorf("the earliest revocation was not used: %q", got[0].Summary)
	}
}

// TestEvictionLRU: a full shard evicts a token not used since the CLOCK hand
// last passed (second chance), which here is the least recently used one.
func TestEvictionLRU(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.Shards = 1; c.MaxTokens = 3 })
	run(e, use(1, 0, frankfurt), use(2, time.Second, frankfurt), use(3, 2*time.Second, frankfurt))
	run(e, use(4, 3*time.Second, frankfurt)) // evicts token 1, the oldest
	run(e, use(2, 4*time.Second, frankfurt)) // token 2 is used again
	run(e, use(5, 5*time.Second, frankfurt)) // evicts token 3, not token 2
	if e.Len() != 3 {
		t.Fatalf("Len = %d, want 3", e.Len())
	}
	for tok, want := range map[byte]bool{1: false, 2: true, 3: false, 4: true, 5: true} {
		if _, ok := e.Snapshot(nil, fp(tok)); ok != want {
			t.Errorf("token %d has state = %v, want %v", tok, ok, want)
		}
	}
	// An evicted token starts afresh: no history, so no travel alert.
	if got := run(e, use(3, 10*time.Minute, sydney)); len(got) != 0 {
		t.Errorf("evicted token raised %v", types(got))
	}
	// A full shard reclaims an expired token before evicting a live one.
	e2 := newTestEngine(t, func(c *Config) { c.Shards = 1; c.MaxTokens = 2 })
	run(e2, use(1, 0, frankfurt, withExp(t0.Add(time.Minute))), use(2, time.Second, frankfurt))
	run(e2, use(2, 3*time.Hour, frankfurt))
	run(e2, use(3, 3*time.Hour+time.Second, frankfurt))
	if _, ok := e2.Snapshot(nil, fp(2)); !ok {
		t.Error("a live token was evicted while an expired one was kept")
	}
}

// TestExpiry: state is dropped after the idle TTL, or after exp+grace when
// the token is no longer used, in event time; the sweep returns the memory.
func TestExpiry(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.Shards = 1; c.MaxLateness = 0 })
	run(e, use(1, 0, frankfurt, opaque()))                        // idle TTL 24h
	run(e, use(2, 0, frankfurt, withExp(t0.Add(10*time.Minute)))) // exp + 1h grace
	run(e, use(3, 0, frankfurt, withExp(t0.Add(10*time.Minute))))
	if e.Len() != 3 {
		t.Fatalf("Len = %d", e.Len())
	}
	// Token 3 is still used after its exp, each use within the grace of the last.
	run(e, use(3, 50*time.Minute, frankfurt, withExp(t0.Add(10*time.Minute))))
	run(e, use(3, 100*time.Minute, frankfurt, withExp(t0.Add(10*time.Minute))))
	// Time moves on (other tokens' uses): token 2 is dead after 01:10.
	for i := range 10 {
		run(e, use(10, 2*time.Hour+time.Duration(i)*time.Second, paris))
	}
	if _, ok := e.Snapshot(nil, fp(2)); ok {
		t.Error("token 2 survived exp + grace")
	}
	if _, ok := e.Snapshot(nil, fp(1)); !ok {
		t.Error("token 1 expired before its idle TTL")
	}
	if _, ok := e.Snapshot(nil, fp(3)); !ok {
		t.Error("token 3, still in use after exp, lost its state")
	}
	for i := range 10 {
		run(e, use(10, 25*time.Hour+time.Duration(i)*time.Second, paris))
	}
	if _, ok := e.Snapshot(nil, fp(1)); ok {
		t.Error("token 1 survived its idle TTL")
	}
	// An expired state is not used as history even before the sweep finds it.
	e2 := newTestEngine(t, func(c *Config) { c.Shards = 1 })
	run(e2, use(1, 0, frankfurt, opaque()))
	if got := run(e2, use(1, 25*time.Hour, sydney, opaque())); len(got) != 0 {
		t.Errorf("expired history used: %v", types(got))
	}
}

// TestLaggingStream: one stream far ahead in event time (an app log read
// first) must not sweep the history of tokens whose uses come from a slower
// stream within max_lateness.
func TestLaggingStream(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.Shards = 1 })
	exp := withExp(t0.Add(30 * time.Minute))
	run(e, use(1, 0, frankfurt, exp))
	for i := range 50 { // another stream, ten hours ahead
		run(e, use(byte(10+i%5), 10*time.Hour+time.Duration(i)*time.Second, paris, opaque()))
	}
	got := run(e, use(1, 20*time.Minute, sydney, exp))
	if !slices.Equal(types(got), []string{travel}) {
		t.Fatalf("lagging stream lost the token's history: %v", types(got))
	}
}

// TestConcurrentObserve runs Observe, Revoke, Snapshot and Process from many
// goroutines (run with -race).
func TestConcurrentObserve(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.MaxTokens = 64 })
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []tokenwatch.Alert
			for i := range 500 {
				tok := byte((g*31 + i) % 100)
				p := frankfurt
				if i%7 == 0 {
					p = sydney
				}
				u := use(tok, time.Duration(i)*time.Minute, p)
				out = e.Observe(&u, out)
				if i%50 == 0 {
					e.Revoke(tokenwatch.Revocation{Fingerprint: fp(tok), Time: t0.Add(time.Duration(i) * time.Minute)}, nil)
					e.Snapshot(nil, fp(tok))
					b := &tokenwatch.Batch{Uses: []tokenwatch.TokenUse{use(tok, time.Duration(i)*time.Minute+time.Second, paris)}}
					_ = e.Process(context.Background(), b)
					out = append(out, b.Alerts...)
				}
			}
			mu.Lock()
			total += len(out)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if n := e.Len(); n == 0 || n > 64+len(e.shards) {
		t.Errorf("Len = %d, want 1..%d", n, 64+len(e.shards))
	}
	if total == 0 {
		t.Error("no alerts from a traffic mix with planted travel")
	}
}

// TestObserveAllocs: judging an ordinary use of a known token allocates nothing.
func TestObserveAllocs(t *testing.T) {
	e := newTestEngine(t)
	u := use(1, 0, frankfurt)
	dst := e.Observe(&u, nil)
	n := testing.AllocsPerRun(1000, func() {
		u.Time = u.Time.Add(time.Second)
		dst = e.Observe(&u, dst[:0])
	})
	if n != 0 {
		t.Errorf("Observe allocates %v times per use", n)
	}
}

func TestSnapshotRestore(t *testing.T) {
	src := newTestEngine(t)
	run(src, use(1, 0, place{}, asLeak("billing")), use(1, time.Minute, frankfurt), use(1, 2*time.Minute, berlinHome))
	snap, ok := src.Snapshot(nil, fp(1))
	if !ok {
		t.Fatal("no state")
	}
	key, err := SnapshotKey(snap)
	if err != nil || key != fp(1) {
		t.Fatalf("SnapshotKey = %v, %v", key, err)
	}
	dst := newTestEngine(t, func(c *Config) { c.Shards = 2 })
	if err := dst.Restore(snap); err != nil {
		t.Fatal(err)
	}
	again, _ := dst.Snapshot(nil, fp(1))
	if !slices.Equal(snap, again) {
		t.Errorf("snapshot changed across restore:\n%x\n%x", snap, again)
	}
	// The restored engine continues exactly as the original.
	next := use(1, 13*time.Minute, sydney)
	a := run(src, next)
	b := run(dst, next)
	if len(a) != 2 || !reflect.DeepEqual(a, b) { // travel + leaked replay
		t.Fatalf("restored engine differs:\n%v\n%v", a, b)
	}
	// Restore replaces existing state; a bad snapshot is an error.
	if err := dst.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if dst.Len() != 1 {
		t.Errorf("Len = %d after restoring twice", dst.Len())
	}
	for _, bad := range [][]byte{nil, {9}, snap[:len(snap)-1], append(slices.Clone(snap), 0)} {
		if err := dst.Restore(bad); err == nil {
			t.Errorf("Restore(%x) accepted a bad snapshot", bad)
		}
	}
}

func TestUseCodecRoundTrip(t *testing.T) {
	uses := []tokenwatch.TokenUse{
		use(1, 0, frankfurt),
		use(2, time.Hour, v6Priv1, opaque(), fromFile("/var/log/a.log", 9)),
		use(3, 0, place{}, asLeak("billing")),
		{},
	}
	uses[0].JWT.Aud = []string{"api", "web"}
	uses[0].JWT.Scope = []string{"openid", "profile"}
	uses[0].JWT.AlgNone, uses[0].JWT.HasNonce = true, true
	uses[0].Sealed = []byte{1, 2, 3}
	uses[0].DPoPProof, uses[0].HeadersLogged, uses[0].Index = true, true, 2
	for i := range uses {
		b := AppendUse(nil, &uses[i])
		var got tokenwatch.TokenUse
		if err := DecodeUse(b, &got); err != nil {
			t.Fatalf("use %d: %v", i, err)
		}
		want := uses[i]
		if !want.Time.IsZero() {
			want.Time = want.Time.UTC()
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("use %d round trip:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

func TestDecodeUseRejectsBadCoordinates(t *testing.T) {
	for _, c := range []struct{ lat, lon float64 }{{math.NaN(), 0}, {0, math.Inf(1)}, {91, 0}, {0, -180.5}} {
		u := use(1, 0, frankfurt)
		u.Geo.Lat, u.Geo.Lon = c.lat, c.lon
		var got tokenwatch.TokenUse
		if err := DecodeUse(AppendUse(nil, &u), &got); err == nil {
			t.Errorf("DecodeUse accepted lat %v lon %v", c.lat, c.lon)
		}
	}
}

func FuzzDecodeUse(f *testing.F) {
	u := use(1, 0, frankfurt)
	f.Add(AppendUse(nil, &u))
	u2 := use(2, 0, v6Priv1, opaque(), asLeak("x"))
	f.Add(AppendUse(nil, &u2))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var u tokenwatch.TokenUse
		if err := DecodeUse(data, &u); err != nil {
			return
		}
		var again tokenwatch.TokenUse
		if err := DecodeUse(AppendUse(nil, &u), &again); err != nil {
			t.Fatalf("re-encoding a decoded use fails: %v", err)
		}
		if !reflect.DeepEqual(u, again) && !(u.IP.Is4In6() || u.IP.Zone() != "") {
			t.Fatalf("round trip differs:\n%+v\n%+v", u, again)
		}
	})
}

func FuzzRestore(f *testing.F) {
	e := newTestEngine(f)
	run(e, use(1, 0, frankfurt), use(1, time.Minute, place{}, asLeak("b")), use(1, 2*time.Minute, berlinHome))
	snap, _ := e.Snapshot(nil, fp(1))
	f.Add(snap)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		e := newTestEngine(t, func(c *Config) { c.Shards = 1 })
		if err := e.Restore(data); err != nil {
			return
		}
		key, err := SnapshotKey(data)
		if err != nil {
			t.Fatal(err)
		}
		// A restored state must be usable.
		u := use(1, 3*time.Minute, sydney)
		u.Fingerprint = key
		u.JWT = nil
		e.Observe(&u, nil)
		if _, ok := e.Snapshot(nil, key); !ok {
			t.Fatal("restored state vanished")
		}
	})
}

func TestIPv4Mapped(t *testing.T) {
	o := obs{ip: netip.MustParseAddr("1.2.3.4").As16()}
	if !o.is4() || o.addr().String() != "1.2.3.4" {
		t.Errorf("is4 %v addr %v", o.is4(), o.addr())
	}
	o = obs{ip: netip.MustParseAddr("2001:db8::1").As16()}
	if o.is4() {
		t.Error("IPv6 reported as IPv4")
	}
}

func ExampleEngine_Observe() {
	e, _ := New(DefaultConfig(), WithClock(func() time.Time { return fixedNow }))
	frankfurt := use(1, 0, frankfurt)
	sydney := use(1, 11*time.Minute, sydney)
	var alerts []tokenwatch.Alert
	alerts = e.Observe(&frankfurt, alerts)
	alerts = e.Observe(&sydney, alerts)
	for _, a := range alerts {
		fmt.Println(a.Type, a.Severity)
		fmt.Println(a.Summary)
	}
	// Output:
	// impossible_travel high
	// Token eyJhbG…Qssw (sub alice, client web) was used from Frankfurt am Main, DE (AS3320) and 11 minutes later from Sydney, AU (AS1221): 16,453 km apart, 88,404 km/h.
}
