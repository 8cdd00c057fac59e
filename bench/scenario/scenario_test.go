package scenario

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/policy"
)

func smallConfig() Config {
	c := DefaultConfig()
	c.Users = 20
	c.PerType = 2
	return c
}

func TestGenerateIsDeterministic(t *testing.T) {
	sum := func() map[string][32]byte {
		dir := t.TempDir()
		if _, err := Generate(dir, smallConfig()); err != nil {
			t.Fatal(err)
		}
		out := map[string][32]byte{}
		for _, f := range []string{FileNginx, FileEnvoy, FileApp, FileRevocations, FileTruth} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			out[f] = sha256.Sum256(b)
		}
		return out
	}
	a, b := sum(), sum()
	for f := range a {
		if a[f] != b[f] {
			t.Errorf("%s differs between two runs with the same seed", f)
		}
	}
}

func TestGenerateContents(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	truth, err := Generate(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Every incident type and every benign pattern is planted PerType times.
	types := map[string]int{}
	for _, in := range truth.Incidents {
		types[in.Type]++
		if len(in.Fingerprint) != 32 {
			t.Errorf("%s: fingerprint %q is not 32 hex digits", in.ID, in.Fingerprint)
		}
	}
	for _, typ := range []string{"impossible_travel", "concurrent_replay", "leaked_token_replay", "post_revocation_use", "expired_token_accepted", "alg_none_accepted", "token_leak"} {
		if types[typ] < cfg.PerType {
			t.Errorf("incident type %s planted %d times, want ≥ %d", typ, types[typ], cfg.PerType)
		}
	}
	patterns := map[string]int{}
	for _, tr := range truth.Traps {
		patterns[tr.Pattern]++
	}
	posture := map[string]bool{}
	for _, c := range truth.Posture {
		posture[c.Type] = true
	}
	for _, typ := range policy.Types {
		if !posture[typ] {
			t.Errorf("posture type %s has no planted case", typ)
		}
	}
	if _, err := policy.Parse([]byte(PolicyYAML)); err != nil {
		t.Errorf("generated policy does not validate: %v", err)
	}
	for _, p := range []string{"metro_switch", "vpn_same_country", "ipv6_privacy", "dual_stack", "long_flight", "rejected_after_expiry", "rejected_after_revocation", "cdn_xff", "clock_skew", "out_of_order"} {
		if patterns[p] != cfg.PerType {
			t.Errorf("benign pattern %s planted %d times, want %d", p, patterns[p], cfg.PerType)
		}
	}
	// Auth logs are valid JSON with the fields tokenwatch parses.
	for _, f := range []string{FileNginx, FileEnvoy} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != truth.Lines[f] || len(lines) < 100 {
			t.Fatalf("%s: %d lines, truth says %d", f, len(lines), truth.Lines[f])
		}
		for i, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%s:%d: %v", f, i+1, err)
			}
		}
	}
	// The out-of-order lines really are out of order in the nginx file.
	b, _ := os.ReadFile(filepath.Join(dir, FileNginx))
	var prev time.Time
	backwards := 0
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m struct {
			T time.Time `json:"time_iso8601"`
		}
		json.Unmarshal([]byte(l), &m)
		if m.T.Before(prev) {
			backwards++
		}
		prev = m.T
	}
	if backwards == 0 {
		t.Error("no out-of-order line in the nginx log")
	}
	// The databases exist and are non-empty.
	for _, f := range []string{FileCityDB, FileASNDB} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestEvaluate(t *testing.T) {
	t0 := Origin
	truth := &Truth{
		Incidents: []Incident{
			{ID: "a", Type: "impossible_travel", Fingerprint: "fa", FirstBadTime: t0, Also: []string{"concurrent_replay"}},
			{ID: "b", Type: "token_leak", Fingerprint: "fb", FirstBadTime: t0},
		},
		Traps: []Trap{{ID: "t", Pattern: "metro_switch", Fingerprint: "ft"}},
	}
	alerts := []Alert{
		{Type: "impossible_travel", Fingerprint: "fa", EventTime: t0.Add(2 * time.Second)},
		{Type: "concurrent_replay", Fingerprint: "fa", EventTime: t0},                // allowed extra
		{Type: "alg_none_accepted", Fingerprint: "fa", EventTime: t0},                // unexpected
		{Type: "impossible_travel", Fingerprint: "ft", EventTime: t0},                // false, trap
		{Type: "concurrent_replay", Fingerprint: "unknown", EventTime: t0},           // false, background
		{Type: "impossible_travel", Fingerprint: "fa", EventTime: t0.Add(time.Hour)}, // later duplicate
	}
	truth.Posture = []PostureCase{
		{ID: "p1", Type: "lifetime_policy_violation", ClientID: "legacy"},
		{ID: "p2", Type: "refresh_token_reuse", Fingerprint: "fr", Also: []string{"refresh_token_in_transit_log"}},
		{ID: "p3", Type: "token_dispensary", Service: "legacy-auth"},
	}
	alerts = append(alerts,
		Alert{Type: "lifetime_policy_violation", ClientID: "legacy", Fingerprint: "any"},
		Alert{Type: "refresh_token_in_transit_log", Fingerprint: "fr"}, // allowed beside p2, does not detect it
		Alert{Type: "audience_mismatch", Fingerprint: "fx"},            // unplanned
	)
	r := Evaluate(truth, alerts)
	if r.PostureCases != 3 || r.PostureDetected != 1 || len(r.PostureMissed) != 2 || len(r.PostureFalse) != 1 || r.PostureFalse[0].Type != "audience_mismatch" {
		t.Errorf("posture: %d/%d, missed %v, false %v", r.PostureDetected, r.PostureCases, r.PostureMissed, r.PostureFalse)
	}
	if r.Incidents != 2 || r.Detected != 1 || len(r.Missed) != 1 || r.Missed[0].ID != "b" {
		t.Errorf("detection = %d/%d, missed %v", r.Detected, r.Incidents, r.Missed)
	}
	if len(r.FalseAlerts) != 2 || r.FalseByPattern["metro_switch"] != 1 || r.FalseByPattern["background"] != 1 {
		t.Errorf("false alerts = %v by pattern %v", r.FalseAlerts, r.FalseByPattern)
	}
	if len(r.Unexpected) != 1 || r.Unexpected[0].Type != "alg_none_accepted" {
		t.Errorf("unexpected = %v", r.Unexpected)
	}
	if r.DelayP50 != 2*time.Second || r.DelayMax != 2*time.Second {
		t.Errorf("delay p50 %s max %s, want 2s (earliest matching alert)", r.DelayP50, r.DelayMax)
	}
	var out bytes.Buffer
	r.Print(&out)
	if !strings.Contains(out.String(), "detection: 1/2 incidents (50.0%)") {
		t.Errorf("report:\n%s", out.String())
	}
}

func TestReadAlerts(t *testing.T) {
	in := `{"id":"x","type":"token_leak","fingerprint":"ab","event_time":"2026-03-02T06:00:00Z","summary":"s"}` + "\n\n"
	as, err := ReadAlerts(strings.NewReader(in + `{"alert":{"id":"y","type":"impossible_travel","fingerprint":"cd"},"enqueued_at":"2026-03-02T06:00:01Z"}` + "\n"))
	if err != nil || len(as) != 2 || as[0].Type != "token_leak" || as[1].Type != "impossible_travel" || as[1].Fingerprint != "cd" {
		t.Fatalf("ReadAlerts = %v, %v", as, err)
	}
	if _, err := ReadAlerts(strings.NewReader(`{"hello":1}` + "\n")); err == nil {
		t.Error("a line that is not an alert was accepted")
	}
	if _, err := ReadAlerts(io.MultiReader(strings.NewReader(in), strings.NewReader("not json\n"))); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("bad line error = %v", err)
	}
}

func TestFingerprintContract(t *testing.T) {
	// HMAC-SHA256("key", "abc")[:16] in lowercase hex.
	if got, want := Fingerprint([]byte("key"), "abc"), "9c196e32dc0175f86f4b1cb89289d6619de6bee6"[:32]; got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
}
