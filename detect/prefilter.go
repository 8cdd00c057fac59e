package detect

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// The anchor prefilter: one pass over the raw bytes that yields every offset
// where an anchor ("eyJ", "bearer", "token", "ghp_", …) may start.
//
// Design (measured in prefilter_test.go / bench_test.go): every anchor names a
// window of three bytes inside it, chosen to be rare in logs ("eyJ", "ok|ke" of
// token, "ec|cr" of secret, "hp_" of ghp_, …). The window's two bigrams go in a
// table indexed by a case-folded bigram (both bytes AND 0x5F: 'a' and 'A' fold
// together, so case-insensitive anchors need no variants and the line is never
// lower-cased). The scan reads 16 bytes at a time (two 8-byte words) and looks
// up the bigrams at the 8 even offsets; any 3-byte window has a bigram at an
// even offset, so no anchor is missed. The lookups are independent loads (no
// loop-carried dependency, unlike an Aho-Corasick or Wu-Manber automaton whose
// next state depends on the previous one), and a step without a hit costs one
// branch. A lane hit becomes a candidate only when the neighbouring bigram
// completes the 3-byte window, and then the anchor bytes are compared.
//
// cloudflare/ahocorasick was measured for the same job
// (BenchmarkPrefilterCloudflareAC): it walks one byte at a time through
// pointer-linked 4 KiB nodes, a dependent load chain per byte, reports which
// patterns occur but not where, and its Match mutates the matcher. It is kept
// as the test oracle of this prefilter (TestPrefilterMatchesAhoCorasick).

type family uint8

const (
	famJWT family = iota + 1
	famScheme
	famToken
	famKey
	famCookie
	famPrefix
	famCmd
	famURL
)

// anchor is one literal the prefilter looks for.
type anchor struct {
	text string
	ci   bool // compare ASCII case-insensitively (text is lower case)
	win  int  // offset of the rare 3-byte window inside text
	fam  family
	// scheme is the canonical Authorization scheme for famScheme anchors.
	scheme string
	// pfx is the prefixed-token rule for famPrefix anchors.
	pfx *prefixRule
	// tool is the command of famCmd anchors (curl, wget).
	tool cmdTool
}

// cand is a candidate anchor occurrence: anchor index and start offset.
type cand struct {
	start int32
	a     uint8
}

type bigramCand struct {
	a     uint8
	delta int8 // start = bigram position + delta
}

const foldMask = 0x5f5f

type matcher struct {
	anchors []anchor
	// tab[folded bigram] is 0, or 1 + the index in lists of the candidates
	// whose window contains that bigram.
	tab   [foldMask + 1]uint8
	lists [][]bigramCand
	// win[folded bigram] has bit 0 set when the bigram starts some anchor's
	// window and bit 1 when it ends one: a lane hit becomes a candidate only
	// when a whole 3-byte window is present.
	win [foldMask + 1]uint8
}

func foldPair(a, b byte) uint16 { return (uint16(a) | uint16(b)<<8) & foldMask }

func newMatcher(anchors []anchor) *matcher {
	if len(anchors) > 255 {
		panic("BUG: too many anchors")
	}
	m := &matcher{anchors: anchors}
	add := func(bg uint16, c bigramCand) {
		if m.tab[bg] == 0 {
			m.lists = append(m.lists, nil)
			if len(m.lists) > 255 {
				panic("BUG: too many anchor bigrams")
			}
			m.tab[bg] = uint8(len(m.lists))
		}
		k := m.tab[bg] - 1
		m.lists[k] = append(m.lists[k], c)
	}
	for i, a := range anchors {
		if a.win < 0 || a.win+3 > len(a.text) {
			panic("BUG: anchor window outside the anchor: " + a.text)
		}
		if a.ci && a.text != strings.ToLower(a.text) {
			panic("BUG: case-insensitive anchor not in lower case: " + a.text)
		}
		t := a.text
		add(foldPair(t[a.win], t[a.win+1]), bigramCand{uint8(i), int8(-a.win)})
		add(foldPair(t[a.win+1], t[a.win+2]), bigramCand{uint8(i), int8(-a.win - 1)})
		m.win[foldPair(t[a.win], t[a.win+1])] |= 1
		m.win[foldPair(t[a.win+1], t[a.win+2])] |= 2
	}
	for _, a := range anchors {
		if a.fam == famURL {
			m.win[foldPair(a.text[0], a.text[1])] |= winURL
			m.win[foldPair(a.text[1], a.text[2])] |= winURL
		}
	}
	for bg, e := range m.tab {
		if m.win[bg]&winURL != 0 && len(m.lists[e-1]) != 1 {
			panic("BUG: the URL anchor's bigrams are shared with another anchor")
		}
	}
	return m
}

// winURL flags, in matcher.win, the two bigrams of "://", the URL anchor. A
// lane hit on them is rejected in the prefilter, without a candidate, unless
// the authority after "://" holds an '@' (userinfo): "://" is in every URL,
// and a candidate costs far more than that walk over a host name.
const winURL = 4

// authorityHasAt reports whether the URL authority starting at i (after
// "://") holds an '@' before its end ('/', '?', '#', a blank, a quote, …).
func authorityHasAt(line []byte, i int) bool {
	// Most authorities are a host name ended by '/' within a few tens of
	// bytes: two vectorised searches of a 64-byte window settle them.
	w := line[i:min(len(line), i+64)]
	if bytes.IndexByte(w, '@') < 0 && (len(w) < 64 || bytes.IndexByte(w, '/') >= 0) {
		return false
	}
	for ; i < len(line) && !urlAuthStop[line[i]]; i++ {
		if line[i] == '@' {
			return true
		}
	}
	return false
}

// urlLane handles a lane hit on a bigram of "://" at x.
func (m *matcher) urlLane(line []byte, x int, bg uint16, out *[maxBlockCands]cand, n int) int {
	p := x
	if line[x] == '/' {
		p--
	}
	if p < 0 || p+3 > len(line) || line[p] != ':' || line[p+1] != '/' || line[p+2] != '/' || !authorityHasAt(line, p+3) {
		return n
	}
	return m.collect(line, x, m.tab[bg], out, n)
}

// maxBlockCands bounds the candidates of one 16-byte step: 8 lanes, each
// giving at most a few anchors (an anchor occurrence is reported by one lane).
const maxBlockCands = 32

// nextBlock scans line from i and stops after the first 16-byte step (or the
// tail) holding verified anchor occurrences. It fills out with them, sorted by
// start, and returns how many and where to continue. n == 0 and next ==
// len(line) mean the line is exhausted.
func (m *matcher) nextBlock(line []byte, i int, out *[maxBlockCands]cand) (n, next int) {
	if i < 0 {
		i = 0
	}
	t := &m.tab
	for ; i <= len(line)-16; i += 16 {
		w := binary.LittleEndian.Uint64(line[i:])
		v := binary.LittleEndian.Uint64(line[i+8:])
		a := t[w&foldMask] | t[(w>>16)&foldMask] | t[(w>>32)&foldMask] | t[(w>>48)&foldMask]
		b := t[v&foldMask] | t[(v>>16)&foldMask] | t[(v>>32)&foldMask] | t[(v>>48)&foldMask]
		if a|b == 0 {
			continue
		}
		if a != 0 {
			n = m.hitBlock(line, i, w, out, n)
		}
		if b != 0 {
			n = m.hitBlock(line, i+8, v, out, n)
		}
		if n > 0 {
			return n, i + 16
		}
	}
	if i <= len(line)-8 {
		w := binary.LittleEndian.Uint64(line[i:])
		n = m.hitBlock(line, i, w, out, n)
		i += 8
	}
	for ; i+1 < len(line); i += 2 {
		if bg := foldPair(line[i], line[i+1]); m.tab[bg] != 0 {
			n = m.lane(line, i, bg, out, n)
		}
	}
	return n, len(line)
}

// hitBlock collects the candidates of the 8-byte block w at line[i:]
// (unrolled: variable shifts and a loop cost more than the work).
func (m *matcher) hitBlock(line []byte, i int, w uint64, out *[maxBlockCands]cand, n int) int {
	if bg := uint16(w) & foldMask; m.tab[bg] != 0 {
		n = m.lane(line, i, bg, out, n)
	}
	if bg := uint16(w>>16) & foldMask; m.tab[bg] != 0 {
		n = m.lane(line, i+2, bg, out, n)
	}
	if bg := uint16(w>>32) & foldMask; m.tab[bg] != 0 {
		n = m.lane(line, i+4, bg, out, n)
	}
	if bg := uint16(w>>48) & foldMask; m.tab[bg] != 0 {
		n = m.lane(line, i+6, bg, out, n)
	}
	return n
}

// lane handles a table hit for the bigram bg at x. It collects candidates only
// when bg and its neighbour bigram form a whole window (the win flags); most
// lane hits stop here.
func (m *matcher) lane(line []byte, x int, bg uint16, out *[maxBlockCands]cand, n int) int {
	f := m.win[bg]
	if f&1 != 0 && x+2 < len(line) && m.win[foldPair(line[x+1], line[x+2])]&2 != 0 ||
		f&2 != 0 && x > 0 && m.win[foldPair(line[x-1], line[x])]&1 != 0 {
		if f&winURL != 0 {
			return m.urlLane(line, x, bg, out, n)
		}
		return m.collect(line, x, m.tab[bg], out, n)
	}
	return n
}

func (m *matcher) collect(line []byte, x int, e uint8, out *[maxBlockCands]cand, n int) int {
	if e == 0 {
		return n
	}
	for _, c := range m.lists[e-1] {
		s := x + int(c.delta)
		if s < 0 || n == len(out) || !m.anchors[c.a].at(line, s) {
			continue
		}
		// insertion by start; blocks hold a handful of candidates
		j := n
		for j > 0 && int(out[j-1].start) > s {
			out[j] = out[j-1]
			j--
		}
		out[j] = cand{start: int32(s), a: c.a}
		n++
	}
	return n
}

// at reports whether anchor a occurs at line[p:].
func (a *anchor) at(line []byte, p int) bool {
	if len(line)-p < len(a.text) {
		return false
	}
	s := line[p : p+len(a.text)]
	if !a.ci {
		return string(s) == a.text
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != a.text[i] {
			return false
		}
	}
	return true
}
