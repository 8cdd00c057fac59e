package detect

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tokenwatch/tokenwatch"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadKeyPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "k", "fingerprint.key")
	// 1. environment wins over config and file.
	k, from, err := LoadKey("config-key-0123456789", file, envOf(map[string]string{EnvFingerprintKey: "hex:" + strings.Repeat("ab", 32)}))
	if err != nil || from != "env "+EnvFingerprintKey || !bytes.Equal(k, bytes.Repeat([]byte{0xab}, 32)) {
		t.Fatalf("env: %x %q %v", k, from, err)
	}
	// 2. config over file.
	k, from, err = LoadKey("base64:"+"AAECAwQFBgcICQoLDA0ODw", file, envOf(nil))
	if err != nil || from != "config detect.fingerprint_key" || len(k) != 16 || k[15] != 15 {
		t.Fatalf("config: %x %q %v", k, from, err)
	}
	// 3. file: generated once, 0600, then reused.
	k1, from, err := LoadKey("", file, envOf(nil))
	if err != nil || from != "generated "+file || len(k1) != 32 {
		t.Fatalf("generate: %q %v", from, err)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	k2, from, err := LoadKey("", file, envOf(nil))
	if err != nil || from != "file "+file || !bytes.Equal(k1, k2) {
		t.Fatalf("reuse: %q %v", from, err)
	}
	b, _ := os.ReadFile(file)
	if strings.TrimSpace(string(b)) != hex.EncodeToString(k1) {
		t.Fatal("key file is not the hex of the key")
	}
}

func TestLoadKeyDefaultLocation(t *testing.T) {
	state := t.TempDir()
	_, from, err := LoadKey("", "", envOf(map[string]string{"XDG_STATE_HOME": state}))
	if want := "generated " + filepath.Join(state, "tokenwatch", "fingerprint.key"); err != nil || from != want {
		t.Fatalf("got %q %v, want %q", from, err, want)
	}
	home := t.TempDir()
	_, from, err = LoadKey("", "", envOf(map[string]string{"HOME": home}))
	if want := "generated " + filepath.Join(home, ".local", "state", "tokenwatch", "fingerprint.key"); err != nil || from != want {
		t.Fatalf("got %q %v, want %q", from, err, want)
	}
}

// TestLoadKeyConcurrentCreate: processes starting together agree on one key.
func TestLoadKeyConcurrentCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "fingerprint.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	errs := make([]error, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], _, errs[i] = LoadKey("", file, envOf(nil))
		}()
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("loader %d: %v, key equal %v", i, errs[i], bytes.Equal(keys[i], keys[0]))
		}
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("not hex"), 0o600)
	secret := "hex:zz-super-secret-value"
	for name, c := range map[string]struct {
		configured, file string
		env              map[string]string
	}{
		"short env":     {"", bad, map[string]string{EnvFingerprintKey: "short"}},
		"bad hex env":   {"", bad, map[string]string{EnvFingerprintKey: secret}},
		"short config":  {"abc", bad, nil},
		"bad key file":  {"", bad, nil},
		"unwritable":    {"", "/proc/tokenwatch/fingerprint.key", nil},
		"bad base64":    {"base64:!!!!", bad, nil},
		"short decoded": {"hex:abcd", bad, nil},
	} {
		_, _, err := LoadKey(c.configured, c.file, envOf(c.env))
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "super-secret") {
			t.Errorf("%s: error leaks the key: %v", name, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config (defaults): %v", err)
	}
	dir := t.TempDir()
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"max_token_len": {Config{MaxTokenLen: 10}, "detect.max_token_len"},
		"key":           {Config{MaxTokenLen: 100, FingerprintKey: "short"}, "detect.fingerprint_key"},
		"key_file dir":  {Config{MaxTokenLen: 100, KeyFile: dir}, "detect.key_file"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want mention of %s", name, err, c.want)
		}
	}
	ok := Config{MaxTokenLen: 8192, FingerprintKey: "hex:" + strings.Repeat("01", 16), KeyFile: filepath.Join(dir, "new.key")}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(ok.Options([]byte("0123456789abcdef"))...)
	if err != nil || s.maxTok != 8192 {
		t.Fatalf("Options: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := New(WithKey([]byte("short"))); err == nil {
		t.Error("short key accepted")
	}
	if _, err := New(WithMaxTokenLen(10)); err == nil {
		t.Error("tiny max token length accepted")
	}
	a, _ := New()
	b, _ := New()
	if a.Fingerprint([]byte("x")) == b.Fingerprint([]byte("x")) {
		t.Error("two scanners without a key share fingerprints")
	}
}

// TestFingerprintContract: lowercase hex of HMAC-SHA256(key, token)[:16].
func TestFingerprintContract(t *testing.T) {
	s, _ := New(WithKey([]byte("key-key-key-key-key")))
	// python3 -c 'import hmac,hashlib;print(hmac.new(b"key-key-key-key-key",b"abc",hashlib.sha256).hexdigest()[:32])'
	if got := s.Fingerprint([]byte("abc")).String(); got != "7b8b43a59054f67e6ab88b598c1c1cf9" {
		t.Errorf("fingerprint %s", got)
	}
}

func TestProcess(t *testing.T) {
	s := newTestScanner(t)
	b := &tokenwatch.Batch{Records: []tokenwatch.Record{
		{Raw: []byte("clean line")},
		{Raw: []byte("Authorization: Bearer " + jwtHS), Findings: []tokenwatch.Finding{{Kind: "stale"}}},
		{Raw: []byte(`{"token":"` + jwtHS + `","time":"2026-01-01T00:00:00Z"}`), Kind: tokenwatch.KindRevocation},
	}}
	jwts := counterValue(t, metricFindings.WithLabelValues(KindJWT))
	recs := counterValue(t, metricRecords)
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(b.Records[0].Findings) != 0 || len(b.Records[1].Findings) != 1 || b.Records[1].Findings[0].Kind != KindJWT || len(b.Records[2].Findings) != 0 {
		t.Fatalf("got %+v", b.Records)
	}
	if d := counterValue(t, metricFindings.WithLabelValues(KindJWT)) - jwts; d != 1 {
		t.Errorf("findings_total{kind=jwt} grew by %v, want 1", d)
	}
	if d := counterValue(t, metricRecords) - recs; d != 2 {
		t.Errorf("records_scanned_total grew by %v, want 2 (revocations are not scanned)", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Process(ctx, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestScanConcurrent: one Scanner, many goroutines, same results.
func TestScanConcurrent(t *testing.T) {
	s := newTestScanner(t)
	lines := corpus(5, 500, 3)
	want := make([]int, len(lines))
	for i, l := range lines {
		want[i] = len(s.Scan(l, nil))
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, l := range lines {
				if n := len(s.Scan(l, nil)); n != want[i] {
					t.Errorf("line %d: %d findings, want %d", i, n, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
