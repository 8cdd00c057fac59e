package parse

import (
	"os"
	"strings"
	"testing"
)

// TestDocsListEveryKey keeps docs/formats.md in step with the key table: every
// built-in key and every Format value is documented.
func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/formats.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, fk := range builtinKeys {
		for _, k := range fk.keys {
			if !strings.Contains(text, "`"+k+"`") {
				t.Errorf("docs/formats.md does not list key `%s`", k)
			}
		}
	}
	for _, f := range formatNames {
		if !strings.Contains(text, "`"+f+"`") {
			t.Errorf("docs/formats.md does not list format `%s`", f)
		}
	}
	for r := range malformedHandles {
		if !strings.Contains(text, "`"+r+"`") {
			t.Errorf("docs/formats.md does not list malformed reason `%s`", r)
		}
	}
}
