package anomaly

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// ringSize is the number of recent observations kept per token. Consecutive
// uses from one network are merged into one observation, so the ring holds the
// last ringSize distinct network sightings.
const ringSize = 4

// Observation flag bits (obs.bits, above the 5-bit UA family).
const (
	famMask    = 0x1f
	obsHasLoc  = 1 << 5
	obsLabeled = 1 << 6
	obsLeak    = 1 << 7
)

// obs is one observation of a token: 56 bytes. Display strings (city, user
// agent, service, source) are interned per shard; AS organisations are kept
// per shard by ASN.
type obs struct {
	ip      [16]byte // IPv4 as IPv4-mapped IPv6; all zero when unknown
	poff    uint64   // origin: (Kafka partition+1, 0 for files) << 48 | offset or line
	dt      int32    // event time, ms relative to state.base
	lat     int32    // 1e-5 degrees
	lon     int32
	asn     uint32
	city    uint32 // interned city name (0: none)
	disp    uint32 // interned (user agent, service, source) (0: none)
	radius  uint16 // accuracy radius, km
	stat    uint16 // HTTP status (low 10 bits, 0 unknown) | span code << 10
	country [2]byte
	cont    uint8
	bits    uint8 // uaFamily | obsHasLoc | obsLabeled | obsLeak
}

func (o *obs) fam() uaFamily  { return uaFamily(o.bits & famMask) }
func (o *obs) hasLoc() bool   { return o.bits&obsHasLoc != 0 }
func (o *obs) labeled() bool  { return o.bits&obsLabeled != 0 }
func (o *obs) leak() bool     { return o.bits&obsLeak != 0 }
func (o *obs) hasIP() bool    { return o.ip != [16]byte{} }
func (o *obs) rejected() bool { s := o.status(); return s == 401 || s == 403 }

// status is the HTTP status of the newest use (0 unknown).
func (o *obs) status() uint16 { return o.stat & statusMask }

const (
	statusMask = 1<<10 - 1
	spanShift  = 10
	spanMax    = 63 // span code meaning "longer than the codes cover"
)

// An observation merges consecutive uses of one client and keeps the newest
// time; its span code bounds how long before that time the first merged use
// may have been: code 0 is a single use, code c = 4e+q+1 means at most
// (5+q)/4 * 2^e seconds (a quarter-octave upper bound), 63 means unbounded.
// Leak replay uses it to tell whether a network was already in use before a
// leak whose sighting arrived late.

func spanCode(sec int64) uint16 {
	if sec <= 0 {
		return 0
	}
	x := uint64(sec)
	e := bits.Len64(x) - 1
	q := 0
	if e >= 2 {
		q = int(x>>(e-2)) & 3
	} else if e == 1 {
		q = int(x&1) << 1
	}
	c := 4*e + q + 1
	if c >= spanMax {
		return spanMax
	}
	return uint16(c)
}

// spanBound returns the span in seconds a code allows (math.MaxInt64 for
// unbounded).
func spanBound(c uint16) int64 {
	switch {
	case c == 0:
		return 0
	case c >= spanMax:
		return math.MaxInt64
	}
	e, q := (c-1)/4, (c-1)%4
	return (int64(5+q) << e) / 4
}

func (o *obs) span() uint16 { return o.stat >> spanShift }

// earliestMs is the earliest event time the observation may cover.
func (s *state) earliestMs(o *obs) int64 {
	b := spanBound(o.span())
	if b == math.MaxInt64 {
		return math.MinInt64
	}
	return s.ms(o.dt) - b*1000
}

func (o *obs) addr() netip.Addr {
	if !o.hasIP() {
		return netip.Addr{}
	}
	return netip.AddrFrom16(o.ip).Unmap()
}

func (o *obs) is4() bool {
	return o.ip[10] == 0xff && o.ip[11] == 0xff && binary.BigEndian.Uint64(o.ip[:8]) == 0 && o.ip[8] == 0 && o.ip[9] == 0
}

func (o *obs) partition() int32 { return int32(o.poff>>48) - 1 }
func (o *obs) offset() int64    { return int64(o.poff & (1<<48 - 1)) }

func packOrigin(or tokenwatch.Origin) uint64 {
	p := uint64(0)
	if or.Partition >= 0 && or.Partition < 0xffff {
		p = uint64(or.Partition) + 1
	}
	return p<<48 | uint64(or.Offset)&(1<<48-1)
}

// state flag bits.
const (
	stLeakAlerted = 1 << iota // token_leak raised
	stHasLeak                 // leakDt is set
	stLive                    // slot in use
	stRef                     // used since the clock hand last passed (CLOCK)
)

// state is one token's history: 280 bytes. The header comes first so a
// lookup's key compare and the rules' header reads share one cache line.
type state struct {
	key     tokenwatch.Fingerprint
	fp      tokenwatch.Fingerprint // the token's fingerprint (= key unless keyed by jti)
	baseSec uint32                 // unix seconds; obs.dt is in ms relative to baseSec*1000
	leakDt  int32                  // first leak sighting, ms relative to the base
	exp     uint32                 // token exp, unix seconds; 0 unknown; free-list link of a free slot
	alerted [4]uint16              // dedupe keys of the last alerts raised (ring)
	n       uint8
	flags   uint8
	alertAt uint8         // next slot in alerted
	ring    [ringSize]obs // sorted by dt, oldest first; ring[:n] valid
}

// baseMs is the unix ms that obs.dt is relative to.
func (s *state) baseMs() int64 { return int64(s.baseSec) * 1000 }

// setBase makes ms (or the second it falls in) the base.
func (s *state) setBase(ms int64) { s.baseSec = clampU32(floorDiv(ms, 1000)) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (s *state) ms(dt int32) int64 { return s.baseMs() + int64(dt) }

// setToken records the token's fingerprint (what a late revocation's alert
// names it by).
func (s *state) setToken(u *tokenwatch.TokenUse) { s.fp = u.Fingerprint }

// lastMs is the event time of the newest observation.
func (s *state) lastMs() int64 {
	if s.n == 0 {
		return s.baseMs()
	}
	return s.ms(s.ring[s.n-1].dt)
}

func (s *state) leakMs() (int64, bool) {
	if s.flags&stHasLeak == 0 {
		return 0, false
	}
	return s.ms(s.leakDt), true
}

// expired reports whether the state is dead at event time nowMs: idle for
// idleTTL, or past exp+grace and idle for grace (a token still being used after
// its expiry keeps its history while the uses continue).
func (s *state) expired(nowMs int64, idleTTL, grace time.Duration) bool {
	last := s.lastMs()
	limit := last + idleTTL.Milliseconds()
	if s.exp != 0 {
		e := max(int64(s.exp)*1000, last) + grace.Milliseconds()
		limit = min(limit, e)
	}
	return nowMs > limit
}

// seenAlert reports whether an alert with dedupe key k was raised recently,
// and if not records it.
func (s *state) seenAlert(k uint16) bool {
	for _, a := range s.alerted {
		if a == k {
			return true
		}
	}
	s.alerted[s.alertAt%uint8(len(s.alerted))] = k
	s.alertAt = (s.alertAt + 1) % uint8(len(s.alerted))
	return false
}

// rel converts unix ms to the state's relative time; ok is false when it does
// not fit (more than ~24 days from base).
func (s *state) rel(ms int64) (int32, bool) {
	d := ms - s.baseMs()
	if d < math.MinInt32 || d > math.MaxInt32 {
		return 0, false
	}
	return int32(d), true
}

// rebase moves base so that ms fits, dropping observations that no longer fit.
// Only called for ms newer than everything.
func (s *state) rebase(ms int64) {
	nbSec := floorDiv(ms-1<<30, 1000) // keep ~12 days of history before ms
	shift := nbSec*1000 - s.baseMs()
	j := 0
	for i := 0; i < int(s.n); i++ {
		d := int64(s.ring[i].dt) - shift
		if d < math.MinInt32 {
			continue
		}
		s.ring[j] = s.ring[i]
		s.ring[j].dt = int32(d)
		j++
	}
	for k := j; k < int(s.n); k++ {
		s.ring[k] = obs{}
	}
	s.n = uint8(j)
	if s.flags&stHasLeak != 0 {
		d := int64(s.leakDt) - shift
		if d < math.MinInt32 {
			d = math.MinInt32
		}
		s.leakDt = int32(d)
	}
	s.baseSec = clampU32(nbSec)
}

// insert adds o (o.dt relative to base) keeping the ring sorted; when full, the
// oldest observation that is not the leak sighting is dropped. An observation
// older than a full ring is not kept.
func (s *state) insert(o obs) {
	n := int(s.n)
	pos := n
	for pos > 0 && s.ring[pos-1].dt > o.dt {
		pos--
	}
	if n == ringSize {
		victim := 0
		if s.ring[0].leak() && ringSize > 1 {
			victim = 1
		}
		if pos <= victim {
			return // older than everything we keep
		}
		copy(s.ring[victim:], s.ring[victim+1:])
		pos--
		n--
	}
	copy(s.ring[pos+1:n+1], s.ring[pos:n])
	s.ring[pos] = o
	s.n = uint8(n + 1)
}

// mergeable reports whether o continues the newest observation: same client
// address and software, same accepted/rejected outcome, later in time, and not
// across the leak time (which must keep "before" and "after" apart).
func (s *state) mergeable(o *obs) bool {
	if s.n == 0 {
		return false
	}
	r := &s.ring[s.n-1]
	if r.leak() || o.leak() || o.dt < r.dt || r.ip != o.ip || r.fam() != o.fam() || r.rejected() != o.rejected() {
		return false
	}
	if lt, ok := s.leakMs(); ok {
		if s.ms(r.dt) <= lt && s.ms(o.dt) > lt {
			return false
		}
	}
	return true
}

// ---- shard: hash table + slab + CLOCK ---------------------------------------

const pageBits = 10 // 1024 states of 280 bytes = 35 x 8 KiB, no size-class waste
const pageSize = 1 << pageBits

type shard struct {
	mu        sync.Mutex
	table     []uint32 // open addressing, linear probing; slot index + 1, 0 = empty
	pages     [][]state
	free      uint32 // free-list head (slot index + 1), linked through state.exp
	slots     uint32 // slots handed out from pages
	live      int
	limit     int
	hand      uint32 // CLOCK hand (slot index + 1)
	sweep     uint32 // expiry sweep cursor
	sweepTick int    // operations since the last sweep step
	wm        int64  // watermark: newest event time seen, unix ms
	in        interner
	_         [64]byte // keep shards on separate cache lines
}

func (sh *shard) at(i uint32) *state { return &sh.pages[(i-1)>>pageBits][(i-1)&(pageSize-1)] }

func tableHash(k *tokenwatch.Fingerprint) uint64 { return binary.LittleEndian.Uint64(k[:8]) }

// lookup returns the slot index (+1) of key, or 0.
func (sh *shard) lookup(k *tokenwatch.Fingerprint) uint32 {
	if len(sh.table) == 0 {
		return 0
	}
	mask := uint64(len(sh.table) - 1)
	for i := tableHash(k) & mask; ; i = (i + 1) & mask {
		idx := sh.table[i]
		if idx == 0 {
			return 0
		}
		if sh.at(idx).key == *k {
			return idx
		}
	}
}

func (sh *shard) tableInsert(idx uint32) {
	if (sh.live+1)*4 > len(sh.table)*3 {
		sh.grow()
	}
	k := &sh.at(idx).key
	mask := uint64(len(sh.table) - 1)
	i := tableHash(k) & mask
	for sh.table[i] != 0 {
		i = (i + 1) & mask
	}
	sh.table[i] = idx
}

func (sh *shard) grow() {
	n := len(sh.table) * 2
	if n < 16 {
		n = 16
	}
	old := sh.table
	sh.table = make([]uint32, n)
	mask := uint64(n - 1)
	for _, idx := range old {
		if idx == 0 {
			continue
		}
		i := tableHash(&sh.at(idx).key) & mask
		for sh.table[i] != 0 {
			i = (i + 1) & mask
		}
		sh.table[i] = idx
	}
}

// tableDelete removes idx with backward-shift deletion.
func (sh *shard) tableDelete(idx uint32) {
	mask := uint64(len(sh.table) - 1)
	i := tableHash(&sh.at(idx).key) & mask
	for sh.table[i] != idx {
		if sh.table[i] == 0 {
			panic("BUG: anomaly: deleting a state that is not in the table")
		}
		i = (i + 1) & mask
	}
	for {
		sh.table[i] = 0
		j := i
		for {
			j = (j + 1) & mask
			if sh.table[j] == 0 {
				return
			}
			h := tableHash(&sh.at(sh.table[j]).key) & mask
			// Move table[j] into the hole at i if its home h is not in (i, j].
			if (j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j)) {
				sh.table[i] = sh.table[j]
				i = j
				break
			}
		}
	}
}

// alloc returns a zeroed slot for key, marked used and in the table.
func (sh *shard) alloc(k tokenwatch.Fingerprint) uint32 {
	var idx uint32
	if sh.free != 0 {
		idx = sh.free
		sh.free = sh.at(idx).exp
	} else {
		if int(sh.slots)%pageSize == 0 {
			sh.pages = append(sh.pages, make([]state, pageSize))
		}
		sh.slots++
		idx = sh.slots
	}
	s := sh.at(idx)
	*s = state{key: k, flags: stLive | stRef}
	sh.tableInsert(idx)
	sh.live++
	return idx
}

// release frees slot idx: out of the table and into the free list.
func (sh *shard) release(idx uint32) {
	sh.tableDelete(idx)
	s := sh.at(idx)
	*s = state{exp: sh.free}
	sh.free = idx
	sh.live--
}

// touch marks idx as recently used for the CLOCK hand: one bit in a cache
// line the lookup already brought in, instead of an LRU list whose update
// touches two other tokens' states on every use.
func (sh *shard) touch(idx uint32) { sh.at(idx).flags |= stRef }

// victim advances the CLOCK hand to the slot to evict: the first live state
// that is expired at the watermark, or that was not used since the hand last
// passed (clearing the used mark of those it passes). This is the
// second-chance approximation of LRU: a token used since the last pass is
// never evicted before one that was not. It needs at most two passes.
func (sh *shard) victim(idleTTL, grace time.Duration) (idx uint32, expired bool) {
	for range 2*sh.slots + 1 {
		sh.hand++
		if sh.hand > sh.slots {
			sh.hand = 1
		}
		s := sh.at(sh.hand)
		if s.flags&stLive == 0 {
			continue
		}
		if s.expired(sh.wm, idleTTL, grace) {
			return sh.hand, true
		}
		if s.flags&stRef != 0 {
			s.flags &^= stRef
			continue
		}
		return sh.hand, false
	}
	panic("BUG: anomaly: full shard without an evictable state")
}

// ---- interner: display strings for evidence ---------------------------------

type dispKey struct{ ua, service, source string }

// interner keeps the display strings of one shard. Ids start at 1; 0 means
// none. When full it is compacted against the live states (compact).
type interner struct {
	cities   map[string]uint32
	cityList []string
	disps    map[dispKey]uint32
	dispList []dispKey
	orgs     map[uint32]string // ASN -> AS organisation
	limit    int               // max entries in cityList+dispList
	misses   int               // failed interns since the last compaction
}

func (in *interner) init(limit int) {
	in.cities = map[string]uint32{}
	in.disps = map[dispKey]uint32{}
	in.orgs = map[uint32]string{}
	in.limit = limit
}

func (in *interner) size() int { return len(in.cityList) + len(in.dispList) }

func (in *interner) city(s string) (uint32, bool) {
	if s == "" {
		return 0, true
	}
	if id, ok := in.cities[s]; ok {
		return id, true
	}
	if in.size() >= in.limit {
		in.misses++
		return 0, false
	}
	in.cityList = append(in.cityList, s)
	id := uint32(len(in.cityList))
	in.cities[s] = id
	return id, true
}

func (in *interner) disp(k dispKey) (uint32, bool) {
	if k == (dispKey{}) {
		return 0, true
	}
	if id, ok := in.disps[k]; ok {
		return id, true
	}
	if in.size() >= in.limit {
		in.misses++
		return 0, false
	}
	in.dispList = append(in.dispList, k)
	id := uint32(len(in.dispList))
	in.disps[k] = id
	return id, true
}

func (in *interner) cityOf(id uint32) string {
	if id == 0 || int(id) > len(in.cityList) {
		return ""
	}
	return in.cityList[id-1]
}

func (in *interner) dispOf(id uint32) dispKey {
	if id == 0 || int(id) > len(in.dispList) {
		return dispKey{}
	}
	return in.dispList[id-1]
}

// maxOrgs bounds the ASN -> organisation map (there are about 120k ASNs).
const maxOrgs = 1 << 18

func (in *interner) org(asn uint32, name string) {
	if asn == 0 || name == "" {
		return
	}
	if old, ok := in.orgs[asn]; ok && old == name {
		return
	}
	if len(in.orgs) < maxOrgs {
		in.orgs[asn] = name
	}
}

// compact rebuilds the shard's interner from the strings its live states
// still reference.
func (sh *shard) compact() {
	old := sh.in
	sh.in.init(old.limit)
	sh.in.orgs = old.orgs
	for p := range sh.pages {
		for i := range sh.pages[p] {
			s := &sh.pages[p][i]
			if s.flags&stLive == 0 {
				continue
			}
			for j := 0; j < int(s.n); j++ {
				o := &s.ring[j]
				o.city, _ = sh.in.city(old.cityOf(o.city))
				o.disp, _ = sh.in.disp(old.dispOf(o.disp))
			}
		}
	}
}
