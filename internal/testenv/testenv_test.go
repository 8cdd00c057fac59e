package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runSkipped runs f in a subtest and reports whether it skipped.
func runSkipped(t *testing.T, f func(t *testing.T)) bool {
	t.Helper()
	skipped := false
	t.Run("sub", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		f(t)
	})
	return skipped
}

func TestAccessorsSkipWhenUnset(t *testing.T) {
	t.Setenv(EnvKafka, "")
	t.Setenv(EnvClickHouse, "")
	t.Setenv(EnvCHDBPython, "")
	cases := map[string]func(t *testing.T){
		"KafkaBrokers":      func(t *testing.T) { KafkaBrokers(t) },
		"CreateTopic":       func(t *testing.T) { CreateTopic(t, "x", 1) },
		"ClickHouseAddr":    func(t *testing.T) { ClickHouseAddr(t) },
		"RestartClickHouse": func(t *testing.T) { RestartClickHouse(t) },
		"StopClickHouse":    func(t *testing.T) { StopClickHouse(t) },
		"StartClickHouse":   func(t *testing.T) { StartClickHouse(t) },
		"NewCHDB":           func(t *testing.T) { NewCHDB(t) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			if !runSkipped(t, f) {
				t.Errorf("%s did not skip with its environment variable unset", name)
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
