package detect

// The anchor prefilter: one pass over the raw bytes that yields every offset
// where an anchor ("eyJ", "bearer", "token", "ghp_", …) may start.
//
// It is a Wu-Manber style multi-pattern skip search over 2-byte blocks of
// case-folded bytes: the window is 3 bytes (the shortest anchor), the last two
// bytes of the window index a 4096-entry shift table, and the window slides by
// 0, 1 or 2 bytes per step. Folding keeps bits 0-4 and 6 of a byte, so 'A' and
// 'a' fold together (case-insensitive anchors need no variants and the line is
// never lower-cased) while letters, digits and punctuation stay apart. A zero
// shift names a candidate list; each anchor in it is then compared at the
// window start, case-sensitively or not as the anchor says.
//
// cloudflare/ahocorasick was measured for this job (BenchmarkPrefilter* in
// prefilter_test.go) and is kept as the test oracle: it walks one byte at a time
// through pointer-linked 4 KiB nodes, reports which patterns occur but not
// where, and its Match mutates the matcher (MatchThreadSafe takes a pool and a
// map per call). The skip table reads about half the bytes and reports offsets.

type family uint8

const (
	famJWT family = iota + 1
	famScheme
	famToken
	famKey
	famCookie
	famPrefix
)

// anchor is one literal the prefilter looks for.
type anchor struct {
	text string
	ci   bool // compare ASCII case-insensitively
	fam  family
	// scheme is the canonical Authorization scheme for famScheme anchors.
	scheme string
	// pfx is the prefixed-token rule for famPrefix anchors.
	pfx *prefixRule
}

const window = 3 // shortest anchor length

// fold6 maps a byte to 6 bits: bits 0-4 and bit 6 (shifted to bit 5).
func fold6(c byte) uint16 { return uint16(c&0x1f) | uint16(c&0x40)>>1 }

type matcher struct {
	anchors []anchor
	shift   [4096]uint8
	// cands[candStart[h]:candStart[h+1]] are the anchor indexes whose bytes 1-2
	// fold to block h.
	candStart [4097]uint16
	cands     []uint8
	lo, hi    [256]uint16 // fold6(c)<<6 and fold6(c), precomputed
}

func newMatcher(anchors []anchor) *matcher {
	if len(anchors) > 255 {
		panic("BUG: too many anchors")
	}
	m := &matcher{anchors: anchors}
	for c := 0; c < 256; c++ {
		m.hi[c] = fold6(byte(c)) << 6
		m.lo[c] = fold6(byte(c))
	}
	for i := range m.shift {
		m.shift[i] = window - 1
	}
	lists := make([][]uint8, 4096)
	for i, a := range anchors {
		if len(a.text) < window {
			panic("BUG: anchor shorter than the window: " + a.text)
		}
		t := a.text
		h0 := fold6(t[0])<<6 | fold6(t[1])
		h1 := fold6(t[1])<<6 | fold6(t[2])
		if m.shift[h0] > 1 {
			m.shift[h0] = 1
		}
		m.shift[h1] = 0
		lists[h1] = append(lists[h1], uint8(i))
	}
	for h := 0; h < 4096; h++ {
		m.candStart[h] = uint16(len(m.cands))
		m.cands = append(m.cands, lists[h]...)
	}
	m.candStart[4096] = uint16(len(m.cands))
	return m
}

// next returns the first window start >= from whose window may begin an
// anchor, and the block naming its candidate list; -1 when there is none.
func (m *matcher) next(line []byte, from int) (int, uint16) {
	j := from + window - 1
	if j < 1 {
		j = 1 // only when from < 0, which callers never pass
	}
	for j < len(line) {
		h := m.hi[line[j-1]] | m.lo[line[j]]
		sh := m.shift[h&4095]
		if sh == 0 {
			return j - (window - 1), h & 4095
		}
		j += int(sh)
	}
	return -1, 0
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
