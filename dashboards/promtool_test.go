package dashboards

import (
	"os"
	"os/exec"
	"testing"
)

// promtool runs promtool from env PROMTOOL (Debian's prometheus package;
// `make test` exports it) or skips.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin := os.Getenv("PROMTOOL")
	if bin == "" {
		t.Skip("PROMTOOL not set (scripts/promtool.sh install; export PROMTOOL=$(scripts/promtool.sh path))")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	t.Logf("promtool %v:\n%s", args, out)
}

func TestPromtoolCheckRules(t *testing.T) { promtool(t, "check", "rules", "rules.yml") }

func TestPromtoolTestRules(t *testing.T) { promtool(t, "test", "rules", "rules_test.yml") }
