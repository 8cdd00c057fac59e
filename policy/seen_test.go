package policy

import (
	"math/rand/v2"
	"testing"
)

// TestSeenSet checks the table against a pair of Go maps (the current and
// the old generation) over random puts, rotations and resets, with keys that
// share home slots so that probe chains form and wrap around.
func TestSeenSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := newSeenSet(4)
	cur, old := map[seenKey]bool{}, map[seenKey]bool{}
	key := func() seenKey {
		// 64 home slots at most, so that chains are long; the top bits
		// spread the keys over the larger tables too.
		return seenKey{rng.Uint64N(64) | rng.Uint64N(4)<<40, rng.Uint64N(8)}
	}
	check := func(step int) {
		t.Helper()
		if s.cur != len(cur) {
			t.Fatalf("step %d: %d current keys, want %d", step, s.cur, len(cur))
		}
		n := len(cur) + len(old) // disjoint
		if s.n != n {
			t.Fatalf("step %d: %d keys, want %d", step, s.n, n)
		}
		got := 0
		s.all(func(k seenKey, f uint8) {
			got++
			w, inCur := cur[k]
			if !inCur {
				w = old[k]
			}
			if want := flagsOf(w, inCur); f != want {
				t.Fatalf("step %d: key %v flags %b, want %b", step, k, f, want)
			}
			if lf := s.lookup(k); lf != f {
				t.Fatalf("step %d: lookup %v = %b, all says %b", step, k, lf, f)
			}
		})
		if got != n {
			t.Fatalf("step %d: all visits %d keys, want %d", step, got, n)
		}
		for range 8 {
			k := key()
			_, inCur := cur[k]
			_, inOld := old[k]
			if !inCur && !inOld && s.lookup(k) != 0 {
				t.Fatalf("step %d: absent key %v found", step, k)
			}
		}
	}
	for step := range 20_000 {
		switch r := rng.IntN(1000); {
		case r < 5:
			var gone []seenKey
			s.rotate(func(k seenKey) { gone = append(gone, k) })
			for k := range old {
				if _, ok := cur[k]; ok {
					continue
				}
				found := false
				for _, g := range gone {
					found = found || g == k
				}
				if !found {
					t.Fatalf("step %d: rotation dropped %v silently", step, k)
				}
			}
			if len(gone) != len(old) || s.n != len(cur) || s.cur != 0 {
				t.Fatalf("step %d: rotation dropped %d keys (want %d), kept %d (want %d), %d current", step, len(gone), len(old), s.n, len(cur), s.cur)
			}
			old, cur = cur, map[seenKey]bool{}
		case r < 6:
			s.reset()
			cur, old = map[seenKey]bool{}, map[seenKey]bool{}
		case r < 20:
			k, w, c := key(), rng.IntN(2) == 0, rng.IntN(2) == 0
			if _, ok := cur[k]; ok {
				break // a restore adds each key once
			}
			if _, ok := old[k]; ok {
				break
			}
			s.add(k, w, c)
			if c {
				cur[k] = w
			} else {
				old[k] = w
			}
		default:
			k, w := key(), rng.IntN(2) == 0
			_, was := cur[k]
			if added := s.put(k, w); added == was {
				t.Fatalf("step %d: put %v reported added=%v, key was current: %v", step, k, added, was)
			}
			cur[k] = w
			delete(old, k)
		}
		if step%97 == 0 {
			check(step)
		}
	}
	check(-1)
	if 2*s.n > len(s.flags) || len(s.flags) < 256 {
		t.Errorf("%d keys in %d slots: the table should have grown, to at most half full", s.n, len(s.flags))
	}
}

func flagsOf(workload, current bool) uint8 {
	f := uint8(seenUsed)
	if workload {
		f |= seenWorkload
	}
	if current {
		f |= seenCurrent
	}
	return f
}
