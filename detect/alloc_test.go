package detect

import (
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch"
)

// TestScanCleanLinesAllocateNothing: the hot path allocates nothing on clean
// lines, including lines with anchors that do not validate (look-alikes) and
// multi-megabyte lines.
func TestScanCleanLinesAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	s := newTestScanner(t)
	lines := corpus(11, 3000, 0)
	for _, rc := range ruleCases {
		for _, fp := range rc.fp {
			lines = append(lines, []byte(fp))
		}
	}
	var b strings.Builder
	g := newCorpusGen(12)
	for b.Len() < 2<<20 {
		b.WriteString(g.cleanLine())
		b.WriteByte(' ')
	}
	long := []byte(b.String())
	dst := make([]tokenwatch.Finding, 0, 4)
	for _, l := range lines {
		if fs := s.Scan(l, dst); len(fs) != 0 {
			t.Fatalf("clean line %q has findings %s", l, describe(fs))
		}
	}
	allocs := testing.AllocsPerRun(5, func() {
		for _, l := range lines {
			dst = s.Scan(l, dst[:0])
		}
	})
	if allocs != 0 {
		t.Errorf("clean lines: %v allocations per run, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(5, func() { dst = s.Scan(long, dst[:0]) })
	if allocs != 0 {
		t.Errorf("long clean line: %v allocations per run, want 0", allocs)
	}
}
