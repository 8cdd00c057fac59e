package policy

// seenSet remembers which (token, service) pairs were checked, two
// generations deep: the current one and the one before it. It is an
// open-addressing hash table with linear probing, which the engine probes
// once per use: the keys are already uniformly random (a keyed fingerprint
// folded with a keyed service hash), so the low bits of the key are the home
// slot and no hashing is needed, and a probe reads one 16-byte key and one
// byte of a small, dense flags array instead of a Go map's group. A use of a
// known pair therefore costs about one cache line.
//
// Keys are never deleted one by one: a rotation (the current generation
// reached its bound) rebuilds the table from the current generation, which
// becomes the old one, and a reload empties it.
type seenSet struct {
	keys  []seenKey
	flags []uint8 // seenUsed, seenWorkload, seenCurrent; 0: the slot is empty
	n     int     // used slots (both generations)
	cur   int     // slots of the current generation
}

const (
	seenUsed     = 1 << iota // the slot holds a key
	seenWorkload             // the token's client is a workload
	seenCurrent              // the key belongs to the current generation (else the old one)
)

// newSeenSet returns a set with room for hint keys before it grows.
func newSeenSet(hint int) seenSet {
	n := 16
	for n < 2*hint {
		n <<= 1
	}
	return seenSet{keys: make([]seenKey, n), flags: make([]uint8, n)}
}

// find returns the slot of k, or the empty slot where k would go and false.
func (s *seenSet) find(k seenKey) (int, bool) {
	mask := uint64(len(s.flags) - 1)
	for i := k[0] & mask; ; i = (i + 1) & mask {
		if s.flags[i] == 0 {
			return int(i), false
		}
		if s.keys[i] == k {
			return int(i), true
		}
	}
}

// lookup returns k's flags, 0 when k is absent.
func (s *seenSet) lookup(k seenKey) uint8 {
	if i, ok := s.find(k); ok {
		return s.flags[i]
	}
	return 0
}

// add adds k to the current or the old generation (a restore).
func (s *seenSet) add(k seenKey, workload, current bool) {
	s.put(k, workload)
	if i, _ := s.find(k); !current && s.flags[i]&seenCurrent != 0 {
		s.flags[i] &^= seenCurrent
		s.cur--
	}
}

// put adds k to the current generation (or moves it there from the old
// one) and reports whether k was absent from the current generation. The
// caller rotates first when the current generation is full.
func (s *seenSet) put(k seenKey, workload bool) bool {
	f := uint8(seenUsed | seenCurrent)
	if workload {
		f |= seenWorkload
	}
	i, ok := s.find(k)
	if ok {
		old := s.flags[i]
		s.flags[i] = f
		if old&seenCurrent != 0 {
			return false
		}
		s.cur++
		return true
	}
	if 2*(s.n+1) > len(s.flags) {
		s.rehash(2*len(s.flags), seenCurrent|seenUsed)
		i, _ = s.find(k)
	}
	s.keys[i], s.flags[i] = k, f
	s.n++
	s.cur++
	return true
}

// rotate drops the old generation, calling gone with each of its keys, and
// makes the current generation the old one.
func (s *seenSet) rotate(gone func(seenKey)) {
	for i, f := range s.flags {
		if f != 0 && f&seenCurrent == 0 {
			gone(s.keys[i])
		}
	}
	// Keep the table's size: the new current generation grows to the size of
	// the one it replaces.
	s.rehash(len(s.flags), seenCurrent)
	for i, f := range s.flags {
		if f != 0 {
			s.flags[i] = f &^ seenCurrent
		}
	}
	s.cur = 0
}

// rehash moves the keys whose flags have a bit of keep into a table of size
// slots.
func (s *seenSet) rehash(size int, keep uint8) {
	keys, flags := s.keys, s.flags
	s.keys, s.flags = make([]seenKey, size), make([]uint8, size)
	s.n, s.cur = 0, 0
	for i, f := range flags {
		if f&keep != 0 {
			j, _ := s.find(keys[i])
			s.keys[j], s.flags[j] = keys[i], f
			s.n++
			if f&seenCurrent != 0 {
				s.cur++
			}
		}
	}
}

// all calls fn with every key and its flags.
func (s *seenSet) all(fn func(k seenKey, flags uint8)) {
	for i, f := range s.flags {
		if f != 0 {
			fn(s.keys[i], f)
		}
	}
}

// reset empties the set, keeping its table.
func (s *seenSet) reset() {
	clear(s.flags)
	s.n, s.cur = 0, 0
}
