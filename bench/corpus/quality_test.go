package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestQualityTargets is the scanner's quality gate (issue 3): on a generated
// labelled corpus with every context and hard negative, recall must be >= 99%
// on jwt, jwe and bearer, >= 97% overall, and precision >= 99%.
func TestQualityTargets(t *testing.T) {
	dir, meta := smallCorpus(t, 8000, 42)
	findings, err := scanCorpus(context.Background(), filepath.Join(dir, corpusFile))
	if err != nil {
		t.Fatal(err)
	}
	res, err := evaluate(dir, findings)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.loadMissContext(filepath.Join(dir, corpusFile)); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := printReport(&b, dir, res, 5); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d lines, %d labels, %d hard negatives\n%s", meta.Lines, meta.Labels, meta.Negatives, b.String())
	if f := res.failures(); len(f) > 0 {
		t.Fatalf("quality targets missed: %s", strings.Join(f, "; "))
	}
}
