package alerts

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

func policyConfig() PolicyConfig {
	c := DefaultConfig().Policy
	c.DedupeWindow = 10 * time.Minute
	c.UpdateInterval = time.Minute
	c.MaxEvidence = 20
	return c
}

// storm returns n alerts of one (type, fingerprint), one per 100 ms, each with
// its own evidence.
func storm(n int) []tokenwatch.Alert {
	out := make([]tokenwatch.Alert, n)
	for i := range out {
		a := testAlert(i, tokenwatch.AlertLeakedTokenReplay)
		a.Fingerprint = fpOf(999)
		a.ID = "storm-" + a.ID
		out[i] = a
	}
	return out
}

// TestReplayStormIsOneAlertPlusUpdates: 3000 alerts over 5 minutes become the
// first alert and one update per minute, all carrying the first alert's id, with
// bounded, growing evidence.
func TestReplayStormIsOneAlertPlusUpdates(t *testing.T) {
	p := NewPolicy(policyConfig())
	t0 := time.Unix(1_800_000_000, 0)
	var out []Emitted
	for i, a := range storm(3000) {
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		out = p.Admit(out, a, time.Time{}, now)
		out = p.Due(out, now)
	}
	out = p.Flush(out, t0.Add(10*time.Minute))
	// 3000 alerts * 100 ms = 300 s: first + updates at 60,120,180,240 s + final flush.
	if len(out) != 6 {
		t.Fatalf("%d alerts out of a storm of 3000, want 6 (1 + 5 updates)", len(out))
	}
	for i, e := range out {
		if e.Alert.ID != "storm-al-0000" {
			t.Fatalf("out[%d].ID = %s, want the first alert's id", i, e.Alert.ID)
		}
		if e.Alert.Update != i {
			t.Fatalf("out[%d].Update = %d, want %d", i, e.Alert.Update, i)
		}
		if len(e.Alert.Evidence) > 20 {
			t.Fatalf("out[%d] has %d evidence entries, max 20", i, len(e.Alert.Evidence))
		}
	}
	if len(out[0].Alert.Evidence) != 1 || len(out[5].Alert.Evidence) != 20 {
		t.Fatalf("evidence sizes %d .. %d, want 1 .. 20", len(out[0].Alert.Evidence), len(out[5].Alert.Evidence))
	}
	last := out[5].Alert.Evidence
	if !last[19].Time.Equal(storm(3000)[2999].Evidence[0].Time) {
		t.Fatal("the last evidence entry is not the latest use")
	}
	if !slices.IsSortedFunc(last, func(a, b tokenwatch.Evidence) int { return a.Time.Compare(b.Time) }) {
		t.Fatal("evidence not oldest first")
	}
}

func TestPolicy(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	leak := testAlert(1, tokenwatch.AlertTokenLeak)
	leak.Severity = tokenwatch.SeverityMedium
	for name, tc := range map[string]struct {
		cfg    func(*PolicyConfig)
		alerts []tokenwatch.Alert
		times  []time.Duration
		want   []string // "id/update/severity"
	}{
		"severity override": {
			cfg:    func(c *PolicyConfig) { c.Severity = map[string]tokenwatch.Severity{"token_leak": "critical"} },
			alerts: []tokenwatch.Alert{leak},
			times:  []time.Duration{0},
			want:   []string{"al-0001/0/critical"},
		},
		"below min severity dropped": {
			cfg:    func(c *PolicyConfig) { c.MinSeverity = tokenwatch.SeverityHigh },
			alerts: []tokenwatch.Alert{leak},
			times:  []time.Duration{0},
			want:   nil,
		},
		"window passed: a new alert": {
			alerts: []tokenwatch.Alert{leak, withID(leak, "al-0001b")},
			times:  []time.Duration{0, 11 * time.Minute},
			want:   []string{"al-0001/0/medium", "al-0001b/0/medium"},
		},
		"within window and interval: suppressed": {
			alerts: []tokenwatch.Alert{leak, withID(leak, "x")},
			times:  []time.Duration{0, 30 * time.Second},
			want:   []string{"al-0001/0/medium"},
		},
		"within window, interval passed: update keeps the id": {
			alerts: []tokenwatch.Alert{leak, withID(leak, "x")},
			times:  []time.Duration{0, 90 * time.Second},
			want:   []string{"al-0001/0/medium", "al-0001/1/medium"},
		},
		"update takes the higher severity": {
			alerts: []tokenwatch.Alert{leak, withSev(withID(leak, "x"), tokenwatch.SeverityCritical)},
			times:  []time.Duration{0, 90 * time.Second},
			want:   []string{"al-0001/0/medium", "al-0001/1/critical"},
		},
		"other fingerprint is another alert": {
			alerts: []tokenwatch.Alert{leak, testAlert(2, tokenwatch.AlertTokenLeak)},
			times:  []time.Duration{0, time.Second},
			want:   []string{"al-0001/0/medium", "al-0002/0/high"},
		},
		"dedupe disabled": {
			cfg:    func(c *PolicyConfig) { c.DedupeWindow = 0 },
			alerts: []tokenwatch.Alert{leak, withID(leak, "x")},
			times:  []time.Duration{0, time.Second},
			want:   []string{"al-0001/0/medium", "x/0/medium"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := policyConfig()
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			p := NewPolicy(c)
			var out []Emitted
			for i, a := range tc.alerts {
				out = p.Admit(out, a, time.Time{}, t0.Add(tc.times[i]))
			}
			var got []string
			for _, e := range out {
				got = append(got, e.Alert.ID+"/"+itoa(e.Alert.Update)+"/"+string(e.Alert.Severity))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPolicyMaxKeysEvictsOldestAndFlushesIt(t *testing.T) {
	c := policyConfig()
	c.MaxKeys = 2
	c.UpdateInterval = time.Hour
	p := NewPolicy(c)
	t0 := time.Unix(1_800_000_000, 0)
	a1, a2, a3 := testAlert(1, "token_leak"), testAlert(2, "token_leak"), testAlert(3, "token_leak")
	var out []Emitted
	out = p.Admit(out, a1, time.Time{}, t0)
	out = p.Admit(out, withID(a1, "dup"), time.Time{}, t0.Add(time.Second)) // pending update of a1
	out = p.Admit(out, a2, time.Time{}, t0.Add(2*time.Second))
	out = p.Admit(out, a3, time.Time{}, t0.Add(3*time.Second)) // evicts a1, flushing its update
	if p.Len() != 2 {
		t.Fatalf("Len = %d, want 2", p.Len())
	}
	var got []string
	for _, e := range out {
		got = append(got, e.Alert.ID+"/"+itoa(e.Alert.Update))
	}
	if want := []string{"al-0001/0", "al-0002/0", "al-0001/1", "al-0003/0"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRouter(t *testing.T) {
	c := DefaultConfig()
	c.Routes = []RouteConfig{
		{Name: "replays", Types: []string{"leaked_token_replay", "concurrent_replay"}, Sinks: []string{"soar", "idp"}},
		{Name: "critical", MinSeverity: "critical", Sinks: []string{"pager", "soar"}},
		{Name: "payments", Services: []string{"payments"}, Sinks: []string{"payments-team"}},
	}
	c.DefaultSinks = []string{"slack"}
	r := NewRouter(c)
	for name, tc := range map[string]struct {
		a    tokenwatch.Alert
		want []string
	}{
		"type":             {withSev(testAlert(1, "leaked_token_replay"), "high"), []string{"soar", "idp"}},
		"type + critical":  {withSev(testAlert(1, "concurrent_replay"), "critical"), []string{"soar", "idp", "pager"}},
		"default":          {withSev(testAlert(1, "token_leak"), "medium"), []string{"slack"}},
		"service in alert": {withService(testAlert(1, "token_leak"), "payments"), []string{"payments-team"}},
		"critical only":    {withSev(testAlert(1, "token_leak"), "critical"), []string{"pager", "soar"}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := r.Route(&tc.a); !slices.Equal(got, tc.want) {
				t.Fatalf("Route = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWebhookIDStable(t *testing.T) {
	a := WebhookID("al-1", 0, "soar")
	for name, other := range map[string]string{
		"update": WebhookID("al-1", 1, "soar"),
		"sink":   WebhookID("al-1", 0, "slack"),
		"alert":  WebhookID("al-2", 0, "soar"),
		"split":  WebhookID("al-10", 0, "soar"),
	} {
		if other == a {
			t.Fatalf("%s: same webhook id %s", name, a)
		}
	}
	if WebhookID("al-1", 0, "soar") != a || len(a) != 36 {
		t.Fatalf("webhook id %q not stable or not msg_ + 32 hex", a)
	}
}

func withID(a tokenwatch.Alert, id string) tokenwatch.Alert { a.ID = id; return a }
func withSev(a tokenwatch.Alert, s tokenwatch.Severity) tokenwatch.Alert {
	a.Severity = s
	return a
}
func withService(a tokenwatch.Alert, s string) tokenwatch.Alert {
	a.Service = s
	a.Severity = tokenwatch.SeverityMedium
	return a
}
func itoa(n int) string { return strconv.Itoa(n) }

func BenchmarkPolicyAdmitStorm(b *testing.B) {
	p := NewPolicy(policyConfig())
	a := storm(1)[0]
	t0 := time.Unix(1_800_000_000, 0)
	var out []Emitted
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		out = p.Admit(out[:0], a, time.Time{}, t0.Add(time.Duration(i)*time.Millisecond))
	}
}
