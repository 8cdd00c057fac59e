package detect

import (
	"os"
	"strings"
	"testing"
)

// TestDocsListEveryRule keeps docs/scanner.md in step with Rules().
func TestDocsListEveryRule(t *testing.T) {
	b, err := os.ReadFile("../docs/scanner.md")
	if err != nil {
		t.Skipf("docs not present: %v", err)
	}
	doc := string(b)
	for _, r := range Rules() {
		if !strings.Contains(doc, "`"+r.Rule+"`") || !strings.Contains(doc, "`"+r.Kind+"`") {
			t.Errorf("docs/scanner.md does not list rule %s (kind %s)", r.Rule, r.Kind)
		}
	}
}
