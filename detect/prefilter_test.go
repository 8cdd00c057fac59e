package detect

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cloudflare/ahocorasick"
)

// prefilterHits runs the prefilter over the whole line and returns every
// (start, anchor) candidate it yields.
func prefilterHits(line []byte) []cand {
	var out []cand
	var buf [maxBlockCands]cand
	for i := 0; i < len(line); {
		n, next := theMatcher.nextBlock(line, i, &buf)
		out = append(out, buf[:n]...)
		i = next
	}
	return out
}

// naiveHits checks every anchor at every offset. The URL anchor "://" is a
// hit only when its authority holds an '@' (urlLane rejects the others).
func naiveHits(line []byte) []cand {
	var out []cand
	for p := range line {
		for ai := range theMatcher.anchors {
			a := &theMatcher.anchors[ai]
			if a.at(line, p) && (a.fam != famURL || authorityHasAt(line, p+3)) {
				out = append(out, cand{start: int32(p), a: uint8(ai)})
			}
		}
	}
	return out
}

func sortCands(c []cand) []cand {
	slices.SortFunc(c, func(x, y cand) int {
		if x.start != y.start {
			return int(x.start - y.start)
		}
		return int(x.a) - int(y.a)
	})
	return slices.Compact(c)
}

// acPresent is the oracle: cloudflare/ahocorasick says which anchors occur
// (case-insensitive anchors are matched on a lower-cased copy, which only a
// test may afford).
type acOracle struct {
	cs, ci       *ahocorasick.Matcher
	csIdx, ciIdx []int
}

func newACOracle() *acOracle {
	o := &acOracle{}
	var cs, ci []string
	for i, a := range theMatcher.anchors {
		if a.ci {
			ci = append(ci, a.text)
			o.ciIdx = append(o.ciIdx, i)
		} else {
			cs = append(cs, a.text)
			o.csIdx = append(o.csIdx, i)
		}
	}
	o.cs, o.ci = ahocorasick.NewStringMatcher(cs), ahocorasick.NewStringMatcher(ci)
	return o
}

func (o *acOracle) present(line []byte) []int {
	var out []int
	for _, k := range o.cs.MatchThreadSafe(line) {
		out = append(out, o.csIdx[k])
	}
	for _, k := range o.ci.MatchThreadSafe(bytes.ToLower(line)) {
		out = append(out, o.ciIdx[k])
	}
	slices.Sort(out)
	return out
}

// withoutURL drops the URL anchor from a set of anchor indices: Aho-Corasick
// reports every "://", the prefilter only those followed by userinfo (naiveHits
// checks those exactly).
func withoutURL(set []int) []int {
	return slices.DeleteFunc(set, func(i int) bool { return theMatcher.anchors[i].fam == famURL })
}

func anchorSetOf(c []cand) []int {
	var out []int
	for _, x := range c {
		out = append(out, int(x.a))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// randomAnchorLine mixes corpus text with anchors in random case at random
// offsets (including the line edges and 8-byte block boundaries).
func randomAnchorLine(r *rand.Rand, g *corpusGen) []byte {
	var b []byte
	for range 1 + r.IntN(6) {
		if r.IntN(2) == 0 {
			s := g.cleanLine()
			b = append(b, s[:r.IntN(len(s)+1)]...)
		}
		for range r.IntN(3) {
			b = append(b, "xyz0123"[:r.IntN(8)]...)
		}
		a := theMatcher.anchors[r.IntN(len(theMatcher.anchors))]
		t := []byte(a.text)
		if a.ci {
			for i := range t {
				if r.IntN(2) == 0 {
					t[i] = byte(strings.ToUpper(string(t[i]))[0])
				}
			}
		}
		b = append(b, t...)
	}
	return b
}

func TestPrefilterMatchesAhoCorasick(t *testing.T) {
	o := newACOracle()
	r := rand.New(rand.NewPCG(1, 2))
	g := newCorpusGen(9)
	lines := corpus(8, 2000, 10)
	for range 5000 {
		lines = append(lines, randomAnchorLine(r, g))
	}
	for _, rc := range ruleCases {
		for _, l := range append(append([]string{}, rc.tp...), rc.fp...) {
			lines = append(lines, []byte(l))
		}
	}
	for _, l := range lines {
		got := sortCands(prefilterHits(l))
		want := sortCands(naiveHits(l))
		if !slices.Equal(got, want) {
			t.Fatalf("line %q:\n prefilter %v\n naive     %v", l, got, want)
		}
		if a, b := withoutURL(anchorSetOf(got)), withoutURL(o.present(l)); !slices.Equal(a, b) {
			t.Fatalf("line %q: prefilter anchors %v, ahocorasick %v", l, a, b)
		}
	}
}

// FuzzPrefilter: the prefilter yields exactly the anchor occurrences.
func FuzzPrefilter(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	g := newCorpusGen(10)
	for range 50 {
		f.Add(randomAnchorLine(r, g))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got := sortCands(prefilterHits(line))
		want := sortCands(naiveHits(line))
		if !slices.Equal(got, want) {
			t.Fatalf("prefilter %v, naive %v", got, want)
		}
	})
}
