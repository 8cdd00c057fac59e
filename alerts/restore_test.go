package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// emitted runs alerts through a fresh policy, one per second from t0, then
// flushes; it returns what went out with its emission time.
func emitted(t *testing.T, c PolicyConfig, t0 time.Time, alerts []tokenwatch.Alert) ([]Emitted, []time.Time) {
	t.Helper()
	p := NewPolicy(c)
	var out []Emitted
	var at []time.Time
	for i, a := range alerts {
		now := t0.Add(time.Duration(i) * time.Second)
		n := len(out)
		out = p.Admit(out, a, time.Time{}, now)
		for range out[n:] {
			at = append(at, now)
		}
	}
	end := t0.Add(time.Duration(len(alerts)) * time.Second)
	n := len(out)
	out = p.Flush(out, end)
	for range out[n:] {
		at = append(at, end)
	}
	return out, at
}

// TestPolicySeed: a policy seeded with what an earlier one emitted merges a
// repeat exactly as the earlier one would have.
func TestPolicySeed(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	leak := testAlert(1, tokenwatch.AlertTokenLeak)
	repeats := func(n int) []tokenwatch.Alert {
		out := make([]tokenwatch.Alert, n)
		for i := range out {
			a := testAlert(100+i, tokenwatch.AlertTokenLeak)
			a.Fingerprint = leak.Fingerprint
			out[i] = a
		}
		return out
	}
	c := policyConfig() // window 10m, interval 1m, 20 evidence
	c.UpdateInterval = 0
	for name, tc := range map[string]struct {
		before []tokenwatch.Alert // through the first policy, one per second
		after  time.Duration      // from the last emission to the repeat
		want   string             // id/update of the repeat after the restart
		wantEv int                // evidence entries of it
	}{
		"first alert only: repeat is update 1": {
			before: []tokenwatch.Alert{leak}, after: time.Minute, want: "al-0001/1", wantEv: 2,
		},
		"after 3 updates: repeat is update 4": {
			before: append([]tokenwatch.Alert{leak}, repeats(3)...), after: time.Minute, want: "al-0001/4", wantEv: 5,
		},
		"evidence stays bounded": {
			before: append([]tokenwatch.Alert{leak}, repeats(30)...), after: time.Minute, want: "al-0001/31", wantEv: 20,
		},
		"older than the window: a new alert": {
			before: []tokenwatch.Alert{leak}, after: 11 * time.Minute, want: "al-0500/0", wantEv: 1,
		},
	} {
		t.Run(name, func(t *testing.T) {
			out, at := emitted(t, c, t0, tc.before)
			p := NewPolicy(c)
			for i, e := range out {
				// What the outbox holds and a restart reads back.
				b, err := json.Marshal(Envelope{Alert: e.Alert, EnqueuedAt: at[i]})
				if err != nil {
					t.Fatal(err)
				}
				se, err := decodeSeed(b, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				p.Seed(se.alert, se.exp, se.at)
			}
			if p.Len() != 1 {
				t.Fatalf("Len after seeding = %d, want 1", p.Len())
			}
			rep := testAlert(500, tokenwatch.AlertTokenLeak)
			rep.Fingerprint = leak.Fingerprint
			got := p.Admit(nil, rep, time.Time{}, at[len(at)-1].Add(tc.after))
			if len(got) != 1 {
				t.Fatalf("%d emitted for the repeat, want 1", len(got))
			}
			g := got[0].Alert
			if s := g.ID + "/" + itoa(g.Update); s != tc.want {
				t.Fatalf("repeat went out as %s, want %s", s, tc.want)
			}
			if len(g.Evidence) != tc.wantEv || !g.Evidence[len(g.Evidence)-1].Time.Equal(rep.Evidence[0].Time) {
				t.Fatalf("repeat has %d evidence entries (last %v), want %d ending with the repeat's use", len(g.Evidence), g.Evidence[len(g.Evidence)-1].Time, tc.wantEv)
			}
			if g.Update > 0 {
				want := fmt.Sprintf("%s (update %d: %d repeats since %s)", rep.Summary, g.Update, g.Update, t0.UTC().Format(time.RFC3339))
				if g.Summary != want {
					t.Fatalf("summary %q, want %q", g.Summary, want)
				}
			}
		})
	}
}

func TestPolicySeedOrderAndBounds(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	c := policyConfig()
	c.MaxKeys = 2
	a1, a2, a3 := testAlert(1, "token_leak"), testAlert(2, "token_leak"), testAlert(3, "token_leak")
	p := NewPolicy(c)
	upd := withID(a1, "al-0001")
	upd.Update = 2
	steps := []struct {
		a    tokenwatch.Alert
		at   time.Duration
		want bool
	}{
		{upd, 10 * time.Second, true},
		{a1, 0, false},                          // update 0, older than update 2 of the key
		{a2, 5 * time.Second, true},             // out of order: goes before a1 in the LRU
		{a3, 20 * time.Second, true},            // evicts a2, the least recently seen
		{testAlert(4, "x"), time.Second, false}, // older than everything held: would go first
	}
	for i, s := range steps {
		if got := p.Seed(s.a, time.Time{}, t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d: Seed = %v, want %v", i, got, s.want)
		}
	}
	if p.Len() != 2 {
		t.Fatalf("Len = %d, want 2", p.Len())
	}
	// a1 merges (pending: the interval of 1m since 10s has not passed); a2 was
	// evicted, so it is a new alert, evicting a3 now least recently seen.
	out := p.Admit(nil, withID(a1, "again"), time.Time{}, t0.Add(30*time.Second))
	out = p.Admit(out, withID(a2, "new"), time.Time{}, t0.Add(30*time.Second))
	var got []string
	for _, e := range out {
		got = append(got, e.Alert.ID+"/"+itoa(e.Alert.Update))
	}
	out = p.Flush(out[:0], t0.Add(31*time.Second))
	for _, e := range out {
		got = append(got, e.Alert.ID+"/"+itoa(e.Alert.Update))
	}
	if want := []string{"new/0", "al-0001/3"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	off := policyConfig()
	off.DedupeWindow = 0
	if NewPolicy(off).Seed(a1, time.Time{}, t0) {
		t.Fatal("Seed kept a key with dedupe disabled")
	}
}

func TestParseUpdateSummary(t *testing.T) {
	since := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		s      string
		n      int
		base   string
		merged int
		ok     bool
	}{
		"update":           {"Token replayed (x). (update 3: 7 repeats since 2026-11-25T08:00:00Z)", 3, "Token replayed (x).", 7, true},
		"nested":           {"a (update 1: 1 repeats since 2026-11-25T08:00:00Z) (update 2: 2 repeats since 2026-11-25T08:00:00Z)", 2, "a (update 1: 1 repeats since 2026-11-25T08:00:00Z)", 2, true},
		"update 0":         {"a (update 0: 0 repeats since 2026-11-25T08:00:00Z)", 0, "", 0, false},
		"other update":     {"a (update 2: 7 repeats since 2026-11-25T08:00:00Z)", 3, "", 0, false},
		"no suffix":        {"plain summary", 1, "", 0, false},
		"bad time":         {"a (update 1: 1 repeats since yesterday)", 1, "", 0, false},
		"negative repeats": {"a (update 1: -1 repeats since 2026-11-25T08:00:00Z)", 1, "", 0, false},
		"truncated":        {"a (update 1: 1 repeats)", 1, "", 0, false},
	} {
		t.Run(name, func(t *testing.T) {
			base, merged, at, ok := parseUpdateSummary(tc.s, tc.n)
			if ok != tc.ok || base != tc.base || merged != tc.merged || (ok && !at.Equal(since)) {
				t.Fatalf("got %q %d %v %v, want %q %d %v", base, merged, at, ok, tc.base, tc.merged, tc.ok)
			}
		})
	}
}

// FuzzSeedEnvelope: any outbox message is decoded or refused, and seeding what
// decodes never panics nor breaks the bounds.
func FuzzSeedEnvelope(f *testing.F) {
	a := testAlert(1, tokenwatch.AlertLeakedTokenReplay)
	a.Update = 2
	a.Summary += " (update 2: 5 repeats since 2026-11-25T08:00:00Z)"
	good, _ := json.Marshal(Envelope{Alert: a, EnqueuedAt: time.Unix(1_800_000_000, 0)})
	f.Add(good)
	f.Add([]byte(`{"alert":{"id":"x","type":"t","fingerprint":"f","update":-1}}`))
	f.Add([]byte(`{"alert":{"id":"x","type":"t","fingerprint":"f","summary":" (update 1: 9 repeats since 0000-01-01T00:00:00Z)","update":1}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, v []byte) {
		e, err := decodeSeed(v, time.Time{})
		if err != nil {
			return
		}
		c := policyConfig()
		c.MaxKeys = 1
		c.MaxEvidence = 2
		p := NewPolicy(c)
		p.Seed(e.alert, e.exp, e.at)
		if p.Len() > 1 {
			t.Fatalf("Len %d > max keys", p.Len())
		}
		for _, o := range p.Admit(nil, e.alert, time.Time{}, e.at.Add(time.Hour)) {
			if len(o.Alert.Evidence) > 2 {
				t.Fatalf("%d evidence entries > 2", len(o.Alert.Evidence))
			}
		}
	})
}

// TestFileOutboxRestart: an outbox stage on a file is stopped (as by kill -9:
// no Close) after an alert and an update went out; a new stage on the same file
// merges a repeat as the next update of the same id. Malformed lines and lines
// older than the window are skipped.
func TestFileOutboxRestart(t *testing.T) {
	dir := t.TempDir()
	c := DefaultConfig()
	c.Outbox.File = filepath.Join(dir, "outbox.jsonl")
	c.Policy.DedupeWindow = 10 * time.Minute
	c.Policy.UpdateInterval = time.Minute
	now := time.Now()
	clock := func() time.Time { return now }
	open := func() (*Outbox, *syncBuffer) {
		q, err := NewFileQueue(c.Outbox.File)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		log, buf := logBuffer()
		return NewOutbox(c, q, WithClock(clock), WithOutboxLogger(log)), buf
	}
	// An old alert of another key, before the window.
	old := testAlert(7, tokenwatch.AlertTokenLeak)
	ob, _ := open()
	now = now.Add(-time.Hour)
	process(t, ob, old)
	now = now.Add(time.Hour)
	replay := testAlert(1, tokenwatch.AlertLeakedTokenReplay)
	process(t, ob, replay)
	now = now.Add(2 * time.Minute)
	process(t, ob, withID(replay, "repeat-1")) // update 1
	// kill -9: nothing flushed, nothing closed; a torn and a foreign line follow.
	f, err := os.OpenFile(c.Outbox.File, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{\"alert\":{\"id\":\"torn\n[1,2]\n")
	f.Close()

	before := readOutbox(t, c.Outbox.File)
	now = now.Add(2 * time.Minute)
	ob2, logs := open()
	if got := ob2.Policy().Len(); got != 1 {
		t.Fatalf("restored %d keys, want 1 (the old one is past the window)", got)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings about malformed lines, want 1:\n%s", n, logs.String())
	}
	process(t, ob2, withID(replay, "repeat-2"), withID(old, "old-again"))
	got := readOutbox(t, c.Outbox.File)[len(before):]
	var ids []string
	for _, e := range got {
		ids = append(ids, e.Alert.ID+"/"+itoa(e.Alert.Update))
	}
	if want := []string{"al-0001/2", "old-again/0"}; !slices.Equal(ids, want) {
		t.Fatalf("after the restart the outbox got %v, want %v", ids, want)
	}
	if n := len(got[0].Alert.Evidence); n != 1 {
		// testAlert evidence of one alert: same use merged (deduplicated).
		t.Fatalf("update 2 has %d evidence entries, want 1", n)
	}

	// Restore disabled, or a failing read: the state starts empty, as before.
	c.Policy.RestoreTimeout = 0
	if ob3, _ := open(); ob3.Policy().Len() != 0 {
		t.Fatal("restore_timeout 0 still restored")
	}
	c.Policy.RestoreTimeout = time.Minute
	q := &FileQueue{path: filepath.Join(dir, "missing", "outbox.jsonl")}
	log, buf := logBuffer()
	if ob4 := NewOutbox(c, q, WithClock(clock), WithOutboxLogger(log)); ob4.Policy().Len() != 0 || !strings.Contains(buf.String(), "starting empty") {
		t.Fatalf("failed restore: %d keys, log %q", ob4.Policy().Len(), buf.String())
	}
	if _, err := (&Outbox{q: q, policy: NewPolicy(c.Policy), now: clock}).Restore(context.Background()); err == nil {
		t.Fatal("Restore of a missing file did not fail")
	}
}

func process(t *testing.T, ob *Outbox, alerts ...tokenwatch.Alert) {
	t.Helper()
	if err := ob.Process(context.Background(), &tokenwatch.Batch{Alerts: alerts}); err != nil {
		t.Fatal(err)
	}
}

// readOutbox returns the envelopes of a file outbox, skipping lines that do not decode.
func readOutbox(t *testing.T, path string) []Envelope {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []Envelope
	for _, l := range strings.Split(string(b), "\n") {
		var e Envelope
		if json.Unmarshal([]byte(l), &e) == nil && e.Alert.ID != "" {
			out = append(out, e)
		}
	}
	return out
}

// BenchmarkFileRestore: rebuilding the policy from a file outbox of 10,000
// envelopes (1,000 keys, 10 emissions each); figures per envelope.
func BenchmarkFileRestore(b *testing.B) {
	dir := b.TempDir()
	c := DefaultConfig()
	c.Outbox.File = filepath.Join(dir, "outbox.jsonl")
	q, err := NewFileQueue(c.Outbox.File)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	now := time.Now()
	const keys, per = 1000, 10
	var msgs []QueueMessage
	size := 0
	for i := range keys * per {
		a := testAlert(i%keys, tokenwatch.AlertLeakedTokenReplay)
		a.Update = i / keys
		v, err := json.Marshal(Envelope{Alert: a, EnqueuedAt: now.Add(time.Duration(i-keys*per) * time.Millisecond)})
		if err != nil {
			b.Fatal(err)
		}
		size += len(v) + 1
		msgs = append(msgs, QueueMessage{Value: v})
	}
	if err := q.Put(context.Background(), msgs); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		ob := &Outbox{q: q, policy: NewPolicy(c.Policy), now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler)}
		st, err := ob.Restore(context.Background())
		if err != nil || st.Seeded != keys || st.Read != keys*per {
			b.Fatalf("restore: %+v, %v", st, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*keys*per), "ns/envelope")
}
