package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recordingTB stands in for a test so that a skip can be observed without marking
// the real test skipped: Skipf and Fatalf record and end the goroutine.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runSkipped runs f with a recordingTB and reports whether it skipped and why.
func runSkipped(t *testing.T, f func(tb testing.TB)) (bool, string) {
	t.Helper()
	r := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	if r.failed {
		t.Errorf("failed instead of skipping: %s", r.msg)
	}
	return r.skipped, r.msg
}

func TestAccessorsSkipWhenUnset(t *testing.T) {
	t.Setenv(EnvKafka, "")
	t.Setenv(EnvClickHouse, "")
	t.Setenv(EnvCHDBPython, "")
	cases := map[string]struct {
		f   func(tb testing.TB)
		env string
	}{
		"KafkaBrokers":      {func(tb testing.TB) { KafkaBrokers(tb) }, EnvKafka},
		"CreateTopic":       {func(tb testing.TB) { CreateTopic(tb, "x", 1) }, EnvKafka},
		"ClickHouseAddr":    {func(tb testing.TB) { ClickHouseAddr(tb) }, EnvClickHouse},
		"RestartClickHouse": {func(tb testing.TB) { RestartClickHouse(tb) }, EnvClickHouse},
		"StopClickHouse":    {func(tb testing.TB) { StopClickHouse(tb) }, EnvClickHouse},
		"StartClickHouse":   {func(tb testing.TB) { StartClickHouse(tb) }, EnvClickHouse},
		"NewCHDB":           {func(tb testing.TB) { NewCHDB(tb) }, EnvCHDBPython},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			skipped, msg := runSkipped(t, tc.f)
			if !skipped {
				t.Fatalf("%s did not skip with its environment variable unset", name)
			}
			if !strings.Contains(msg, tc.env) {
				t.Errorf("skip message %q does not name %s", msg, tc.env)
			}
		})
	}
}

func TestKafkaBrokersParsesList(t *testing.T) {
	cases := map[string]struct {
		env  string
		want string
	}{
		"one":          {"127.0.0.1:19092", "[127.0.0.1:19092]"},
		"several":      {"127.0.0.1:19092,127.0.0.1:19094", "[127.0.0.1:19092 127.0.0.1:19094]"},
		"spaces/empty": {" 127.0.0.1:19092 , ,[::1]:19092 ", "[127.0.0.1:19092 [::1]:19092]"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv(EnvKafka, tc.env)
			got := KafkaBrokers(t)
			if s := "[" + strings.Join(got, " ") + "]"; s != tc.want {
				t.Errorf("KafkaBrokers(%q) = %s, want %s", tc.env, s, tc.want)
			}
		})
	}
}

func TestTopicNameSanitising(t *testing.T) {
	cases := map[string]string{
		"TestFoo/sub case": "TestFoo-sub-case",
		"ok.name_1-x":      "ok.name_1-x",
		"ünï/côdé":         "-n-c-d-",
	}
	for in, want := range cases {
		if got := topicUnsafe.ReplaceAllString(in, "-"); got != want {
			t.Errorf("sanitise(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRepoRootFindsGoMod(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "scripts/clickhouse.sh", "scripts/chdb_server.py"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("repo root %s has no %s: %v", root, f, err)
		}
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := &tailBuffer{max: 8}
	for _, s := range []string{"abc", "defgh", "ijklmnop", "q"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "jklmnopq" {
		t.Errorf("tail = %q, want %q", got, "jklmnopq")
	}
}

func TestAbbrev(t *testing.T) {
	cases := map[string]string{
		"SELECT  1\n\tFROM t":    `"SELECT 1 FROM t"`,
		strings.Repeat("x", 200): `"` + strings.Repeat("x", 117) + `..."`,
	}
	for in, want := range cases {
		if got := abbrev(in); got != want {
			t.Errorf("abbrev(%.20q...) = %s, want %s", in, got, want)
		}
	}
}
