package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/detect/anomaly"
	"github.com/tokenwatch/tokenwatch/internal/binrec"
)

// The engine's state as changelog records, for the state log (statelog.go).
//
// Every entry of every state table is one record, keyed by a kind byte and
// the entry's key; its value is the entry in a compact versioned binary
// encoding, and a nil value (a Kafka tombstone) says the entry is gone. One
// more record, "m", holds the engine-wide scalars. A compacted topic of these
// records therefore holds exactly the engine's state, and reading it back in
// any order of keys rebuilds it (restorer).
//
//	key                                   value (after the version byte)
//	"m"                                   watermark, lifeDay, seen generation, service-hash key, policy digest
//	'o' once-key[16]                      expiry
//	's' seen-key[16]                      generation, workload
//	'l' day, issuer, client               count, longest, policy, reported, first use
//	'u' issuer, client, subject           fingerprint, scopes, time, newest use
//	'r' fingerprint[16]                   up to 4 (network, time)
//	'e' endpoint                          quiet-till, uses
//	'p' topic, partition                  offset and index of the newest use applied
//
// Strings and byte strings are a uvarint length and the bytes; integers are
// (u)varints; uses are anomaly.AppendUse encodings behind a uvarint length.

const (
	recMeta     = 'm'
	recOnce     = 'o'
	recSeen     = 's'
	recLife     = 'l'
	recSubject  = 'u'
	recRefresh  = 'r'
	recEndpoint = 'e'
	recApplied  = 'p'

	stateVersion = 1

	// Decoding bounds. A string of a key or value is at most maxField bytes
	// (a JWT claim is far shorter; a Kafka message is 1 MB by default).
	maxField  = 1 << 20
	maxScopes = 1024
	// maxEndpointUses bounds the uses of one endpoint record:
	// 4 * dispensary_min_subjects, which File.Validate caps.
	maxEndpointUses = 4 * maxDispensarySubjects
)

// changes records which entries a batch changed (nil: not tracked). Only the
// keys are kept; the values are read from the engine when the changes are
// written, so an entry changed many times is written once, as it is then.
type changes struct {
	meta      bool
	once      map[[16]byte]struct{}
	seen      map[seenKey]struct{}
	life      map[lifeKey]struct{}
	subjects  map[subjKey]struct{}
	refresh   map[tokenwatch.Fingerprint]struct{}
	endpoints map[string]struct{}
}

func newChanges() *changes {
	return &changes{
		meta: true,
		once: map[[16]byte]struct{}{}, seen: map[seenKey]struct{}{}, life: map[lifeKey]struct{}{},
		subjects: map[subjKey]struct{}{}, refresh: map[tokenwatch.Fingerprint]struct{}{}, endpoints: map[string]struct{}{},
	}
}

func (c *changes) markMeta() {
	if c != nil {
		c.meta = true
	}
}

func (c *changes) markOnce(k [16]byte) {
	if c != nil {
		c.once[k] = struct{}{}
	}
}

func (c *changes) markSeen(k seenKey) {
	if c != nil {
		c.seen[k] = struct{}{}
	}
}

func (c *changes) markLife(k lifeKey) {
	if c != nil {
		c.life[k] = struct{}{}
	}
}

func (c *changes) markSubject(k subjKey) {
	if c != nil {
		c.subjects[k] = struct{}{}
	}
}

func (c *changes) markRefresh(k tokenwatch.Fingerprint) {
	if c != nil {
		c.refresh[k] = struct{}{}
	}
}

func (c *changes) markEndpoint(k string) {
	if c != nil {
		c.endpoints[k] = struct{}{}
	}
}

func (c *changes) empty() bool {
	return !c.meta && len(c.once)+len(c.seen)+len(c.life)+len(c.subjects)+len(c.refresh)+len(c.endpoints) == 0
}

func (c *changes) reset() {
	c.meta = false
	clear(c.once)
	clear(c.seen)
	clear(c.life)
	clear(c.subjects)
	clear(c.refresh)
	clear(c.endpoints)
}

// partKey names a Kafka source partition.
type partKey struct {
	topic     string
	partition int32
}

// position is the newest use of a partition applied to the state.
type position struct {
	offset int64
	index  int
	dirty  bool // changed since the state log last wrote
}

// replayed reports whether u, from a Kafka partition, is at or before the
// newest use of its partition applied to the state, and otherwise makes it
// the newest. A partition is read in order, so such a use is one of a batch
// that was applied and persisted but not committed before a restart: its
// findings are durable already, and applying it twice would count it twice
// (a dispensary's leaks).
func (e *Engine) replayed(u *tokenwatch.TokenUse) bool {
	pos := e.lastPos
	if pos == nil || e.lastPart.partition != u.Origin.Partition || e.lastPart.topic != u.Origin.Source {
		pk := partKey{u.Origin.Source, u.Origin.Partition}
		if pos = e.applied[pk]; pos == nil {
			pos = &position{offset: -1, index: -1}
			e.applied[pk] = pos
		}
		e.lastPart, e.lastPos = pk, pos
	}
	if o := u.Origin.Offset; o < pos.offset || o == pos.offset && u.Index <= pos.index {
		return true
	}
	pos.offset, pos.index, pos.dirty = u.Origin.Offset, u.Index, true
	return false
}

// record is one changelog record: key buf[k0:k1], value buf[k1:v1], a
// tombstone when v1 < 0.
type record struct{ k0, k1, v1 int }

// trackChanges makes the engine record what each batch changes, for
// appendChanges. The state log turns it on before restoring.
func (e *Engine) trackChanges() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.changed == nil {
		e.changed = newChanges()
		e.applied = map[partKey]*position{}
	}
}

// appendChanges appends to recs (keys and values in buf) one record per
// entry changed since the last call: its latest value, or a tombstone when it
// is gone, and forgets the changes.
func (e *Engine) appendChanges(recs []record, buf []byte) ([]record, []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.changed
	if c == nil {
		return recs, buf
	}
	for pk, pos := range e.applied {
		if !pos.dirty {
			continue
		}
		pos.dirty = false
		k0 := len(buf)
		buf = binary.AppendVarint(appendStr(append(buf, recApplied), pk.topic), int64(pk.partition))
		k1 := len(buf)
		buf = binary.AppendVarint(append(buf, stateVersion), pos.offset)
		buf = binary.AppendUvarint(buf, uint64(pos.index))
		recs = append(recs, record{k0, k1, len(buf)})
	}
	if c.empty() {
		return recs, buf
	}
	add := func(k0, k1 int, ok bool) {
		r := record{k0: k0, k1: k1, v1: len(buf)}
		if !ok {
			r.v1 = -1
		}
		recs = append(recs, r)
	}
	if c.meta {
		k0 := len(buf)
		buf = append(buf, recMeta)
		k1 := len(buf)
		buf = e.appendMeta(buf)
		recs = append(recs, record{k0, k1, len(buf)})
	}
	for k := range c.once {
		k0 := len(buf)
		buf = append(append(buf, recOnce), k[:]...)
		k1 := len(buf)
		exp, ok := e.once[k]
		if ok {
			buf = binary.AppendVarint(append(buf, stateVersion), exp)
		}
		add(k0, k1, ok)
	}
	for k := range c.seen {
		k0 := len(buf)
		buf = appendSeenKey(append(buf, recSeen), k)
		k1 := len(buf)
		f := e.seen.lookup(k)
		ok := f != 0
		gen, workload := e.seenGen, f&seenWorkload != 0
		if f&seenCurrent == 0 {
			gen--
		}
		if ok {
			buf = binary.AppendUvarint(append(buf, stateVersion), gen)
			buf = append(buf, b2u(workload))
		}
		add(k0, k1, ok)
	}
	for k := range c.life {
		k0 := len(buf)
		buf = appendLifeKey(buf, k)
		k1 := len(buf)
		a, ok := e.life[k]
		if ok {
			buf = appendLife(buf, a)
		}
		add(k0, k1, ok)
	}
	for k := range c.subjects {
		k0 := len(buf)
		buf = appendSubjectKey(buf, k)
		k1 := len(buf)
		st, ok := e.subjects[e.subjectHash(k.issuer, k.client, k.subject)]
		if ok {
			buf = appendSubject(buf, st)
		}
		add(k0, k1, ok)
	}
	for k := range c.refresh {
		k0 := len(buf)
		buf = append(append(buf, recRefresh), k[:]...)
		k1 := len(buf)
		st, ok := e.refresh[k]
		if ok {
			buf = appendRefresh(buf, st)
		}
		add(k0, k1, ok)
	}
	for k := range c.endpoints {
		k0 := len(buf)
		buf = append(append(buf, recEndpoint), k...)
		k1 := len(buf)
		st, ok := e.endpoints[k]
		if ok {
			buf = appendEndpoint(buf, st)
		}
		add(k0, k1, ok)
	}
	c.reset()
	return recs, buf
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func (e *Engine) appendMeta(b []byte) []byte {
	b = append(b, stateVersion)
	b = binary.AppendVarint(b, e.watermark)
	b = binary.AppendVarint(b, e.lifeDay)
	b = binary.AppendUvarint(b, e.seenGen)
	b = binary.LittleEndian.AppendUint64(b, e.svcKey[0])
	b = binary.LittleEndian.AppendUint64(b, e.svcKey[1])
	d := e.pol.Load().digest
	return append(b, d[:]...)
}

func appendSeenKey(b []byte, k seenKey) []byte {
	b = binary.LittleEndian.AppendUint64(b, k[0])
	return binary.LittleEndian.AppendUint64(b, k[1])
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendUse appends u's anomaly.AppendUse encoding behind its length.
func appendUse(b []byte, u *tokenwatch.TokenUse) []byte {
	b = append(b, 0, 0, 0) // room for the length's uvarint, up to 2^21 bytes
	start := len(b)
	b = anomaly.AppendUse(b, u)
	n := len(b) - start
	var l [binary.MaxVarintLen64]byte
	ln := binary.PutUvarint(l[:], uint64(n))
	if ln != 3 {
		b = slices.Replace(b, start-3, start, l[:ln]...)
	} else {
		copy(b[start-3:], l[:3])
	}
	return b
}

func appendLifeKey(b []byte, k lifeKey) []byte {
	b = binary.AppendVarint(append(b, recLife), k.day)
	return appendStr(appendStr(b, k.issuer), k.client)
}

func appendLife(b []byte, a *lifeAgg) []byte {
	b = append(b, stateVersion)
	b = binary.AppendUvarint(b, uint64(a.count))
	b = binary.AppendVarint(b, int64(a.longest))
	b = binary.AppendVarint(b, int64(a.policy))
	b = append(b, b2u(a.reported))
	return appendUse(b, &a.first)
}

func appendSubjectKey(b []byte, k subjKey) []byte {
	return appendStr(appendStr(appendStr(append(b, recSubject), k.issuer), k.client), k.subject)
}

func appendSubject(b []byte, st *subjState) []byte {
	b = append(b, stateVersion)
	b = append(b, st.fp[:]...)
	b = binary.AppendUvarint(b, uint64(len(st.scopes)))
	for _, s := range st.scopes {
		b = appendStr(b, s)
	}
	b = binary.AppendVarint(b, st.t)
	return appendUse(b, &st.use)
}

func appendRefresh(b []byte, st *refreshState) []byte {
	b = append(b, stateVersion, byte(st.n))
	for i := range st.n {
		n := st.nets[i]
		b = binary.AppendUvarint(b, uint64(n.asn))
		switch a := n.prefix.Addr(); {
		case !n.prefix.IsValid():
			b = append(b, 0)
		case a.Is4():
			a4 := a.As4()
			b = append(append(b, 4), a4[:]...)
			b = append(b, byte(n.prefix.Bits()))
		default:
			a16 := a.As16()
			b = append(append(b, 16), a16[:]...)
			b = append(b, byte(n.prefix.Bits()))
		}
		b = binary.AppendVarint(b, st.times[i])
	}
	return b
}

func appendEndpoint(b []byte, st *endpointState) []byte {
	b = append(b, stateVersion)
	b = binary.AppendUvarint(b, uint64(len(st.alerted)))
	for _, t := range st.alerted {
		b = binary.AppendVarint(b, t)
	}
	b = binary.AppendUvarint(b, uint64(len(st.uses)))
	for i := range st.uses {
		b = appendUse(b, &st.uses[i])
	}
	return b
}

// ---- decoding: the bytes come from a Kafka topic, so they are untrusted ----

// reader is the strict decoder of these records (package binrec) with this
// package's field types on top.
type reader struct{ binrec.Reader }

func (r *reader) u64() uint64 {
	p := r.Bytes(8)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

func (r *reader) str() string {
	n := r.Uvarint()
	if n > maxField {
		r.Fail(fmt.Errorf("string of %d bytes is too long", n))
		return ""
	}
	return string(r.Bytes(int(n)))
}

func (r *reader) bool() bool {
	switch r.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.Fail(errors.New("bad boolean"))
	return false
}

func (r *reader) version() {
	if v := r.Byte(); r.Err == nil && v != stateVersion {
		r.Fail(fmt.Errorf("unknown version %d", v))
	}
}

func (r *reader) use(u *tokenwatch.TokenUse) {
	n := r.Uvarint()
	if n > maxField {
		r.Fail(fmt.Errorf("use of %d bytes is too long", n))
		return
	}
	p := r.Bytes(int(n))
	if r.Err != nil {
		return
	}
	if err := anomaly.DecodeUse(p, u); err != nil {
		r.Fail(err)
	}
	u.Sealed = nil // never kept in policy state
}

// end fails on trailing bytes and returns the error, if any.
func (r *reader) end(what string) error {
	if r.Err == nil && len(r.B) != 0 {
		r.Fail(fmt.Errorf("%d trailing bytes", len(r.B)))
	}
	if r.Err != nil {
		return fmt.Errorf("decode policy %s: %w", what, r.Err)
	}
	return nil
}

// metaState is the "m" record.
type metaState struct {
	watermark, lifeDay int64
	seenGen            uint64
	svcKey             [2]uint64
	digest             [8]byte
}

func decodeMeta(v []byte) (metaState, error) {
	r := reader{binrec.Reader{B: v}}
	r.version()
	var m metaState
	m.watermark, m.lifeDay, m.seenGen = r.Varint(), r.Varint(), r.Uvarint()
	m.svcKey[0], m.svcKey[1] = r.u64(), r.u64()
	copy(m.digest[:], r.Bytes(8))
	return m, r.end("meta state")
}

type seenState struct {
	gen      uint64
	workload bool
}

func decodeSeen(v []byte) (seenState, error) {
	r := reader{binrec.Reader{B: v}}
	r.version()
	s := seenState{gen: r.Uvarint(), workload: r.bool()}
	return s, r.end("seen state")
}

func decodeOnce(v []byte) (int64, error) {
	r := reader{binrec.Reader{B: v}}
	r.version()
	exp := r.Varint()
	return exp, r.end("once state")
}

func decodeLifeKey(k []byte) (lifeKey, error) {
	r := reader{binrec.Reader{B: k}}
	lk := lifeKey{day: r.Varint()}
	lk.issuer, lk.client = r.str(), r.str()
	return lk, r.end("lifetime key")
}

func decodeLife(v []byte) (*lifeAgg, error) {
	r := reader{binrec.Reader{B: v}}
	r.version()
	a := &lifeAgg{}
	count := r.Uvarint()
	if count > math.MaxInt32 {
		r.Fail(errors.New("count out of range"))
	}
	a.count = int(count)
	a.longest, a.policy = time.Duration(r.Varint()), time.Duration(r.Varint())
	if r.Err == nil && (a.count < 1 || a.longest <= 0 || a.policy <= 0 || a.longest <= a.policy) {
		r.Fail(fmt.Errorf("inconsistent lifetime aggregate (count %d, longest %s, policy %s)", a.count, a.longest, a.policy))
	}
	a.reported = r.bool()
	r.use(&a.first)
	return a, r.end("lifetime state")
}

func decodeSubjectKey(k []byte) (subjKey, error) {
	r := reader{binrec.Reader{B: k}}
	sk := subjKey{issuer: r.str(), client: r.str(), subject: r.str()}
	return sk, r.end("subject key")
}

func decodeSubject(v []byte) (*subjState, error) {
	r := reader{binrec.Reader{B: v}}
	r.version()
	st := &subjState{}
	copy(st.fp[:], r.Bytes(16))
	n := r.Uvarint()
	if n > maxScopes {
		r.Fail(fmt.Errorf("%d scopes is too many", n))
	}
	if r.Err == nil {
		st.scopes = make([]string, 0, n)
		for range n {
			s := r.str()
			if r.Err == nil && len(st.scopes) > 0 && s <= st.scopes[len(st.scopes)-1] {
				r.Fail(errors.New("scopes not sorted"))
			}
			if r.Err != nil {
				break
			}
			st.scopes = append(st.scopes, s)
		}
	}
	st.t = r.Varint()
	r.use(&st.use)
	if r.Err == nil && st.use.JWT == nil {
		r.Fail(errors.New("subject's use has no JWT"))
	}
	return st, r.end("subject state")
}

func decodeRefresh(v []byte) (*refreshState, error) {
	r := reader{binrec.Reader{B: v}}
	r.version()
	st := &refreshState{}
	n := int(r.Byte())
	if n < 1 || n > len(st.nets) {
		r.Fail(fmt.Errorf("%d networks out of range 1..%d", n, len(st.nets)))
	}
	for i := 0; i < n && r.Err == nil; i++ {
		asn := r.Uvarint()
		if asn > math.MaxUint32 {
			r.Fail(errors.New("ASN out of range"))
		}
		nk := netKey{asn: uint32(asn)}
		switch l := r.Byte(); l {
		case 0:
		case 4, 16:
			raw := r.Bytes(int(l))
			bits := int(r.Byte())
			if r.Err != nil {
				break
			}
			a, _ := netip.AddrFromSlice(raw)
			if bits > a.BitLen() {
				r.Fail(fmt.Errorf("prefix length %d out of range", bits))
				break
			}
			nk.prefix = netip.PrefixFrom(a, bits).Masked()
		default:
			r.Fail(fmt.Errorf("bad address length %d", l))
		}
		if r.Err == nil && (nk.asn == 0) == !nk.prefix.IsValid() {
			r.Fail(errors.New("a network is an ASN or a prefix"))
		}
		st.nets[i], st.times[i] = nk, r.Varint()
	}
	st.n = n
	return st, r.end("refresh state")
}

func decodeAppliedKey(k []byte) (partKey, error) {
	r := reader{binrec.Reader{B: k}}
	pk := partKey{topic: r.str()}
	p := r.Varint()
	if p < 0 || p > math.MaxInt32 {
		r.Fail(fmt.Errorf("partition %d out of range", p))
	}
	pk.partition = int32(p)
	return pk, r.end("applied position key")
}

func decodeApplied(v []byte) (*position, error) {
	r := reader{binrec.Reader{B: v}}
	r.version()
	pos := &position{offset: r.Varint()}
	idx := r.Uvarint()
	if idx > math.MaxInt32 || pos.offset < 0 {
		r.Fail(errors.New("position out of range"))
	}
	pos.index = int(idx)
	return pos, r.end("applied position")
}

func decodeEndpoint(v []byte) (*endpointState, error) {
	r := reader{binrec.Reader{B: v}}
	r.version()
	st := &endpointState{}
	na := r.Uvarint()
	if na > maxAlertedTimes {
		r.Fail(fmt.Errorf("%d alert times is too many", na))
	}
	for i := uint64(0); i < na && r.Err == nil; i++ {
		st.alerted = append(st.alerted, r.Varint())
	}
	n := r.Uvarint()
	if n > maxEndpointUses {
		r.Fail(fmt.Errorf("%d uses is too many", n))
	}
	if r.Err == nil && n > 0 {
		st.uses = make([]tokenwatch.TokenUse, n)
		for i := range st.uses {
			r.use(&st.uses[i])
		}
	}
	return st, r.end("endpoint state")
}

// restorer rebuilds an engine's state from changelog records given in any
// order of keys (a topic's partitions are read one after the other). Seen
// keys are placed in the current or the old generation once the meta record,
// which names the current generation, has been read: in finish.
type restorer struct {
	e    *Engine
	meta *metaState
	seen map[seenKey]seenState
	n    int
}

// restoring starts a restore into e, which must not have processed anything.
func (e *Engine) restoring() *restorer {
	e.trackChanges()
	return &restorer{e: e, seen: map[seenKey]seenState{}}
}

// apply applies one record: its value, or its removal (value nil). A record
// that does not decode is an error and changes nothing.
func (r *restorer) apply(key, value []byte) error {
	if len(key) == 0 {
		return errors.New("decode policy state: empty key")
	}
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	kind, k := key[0], key[1:]
	del := value == nil
	fixed := func(what string) ([16]byte, error) {
		if len(k) != 16 {
			return [16]byte{}, fmt.Errorf("decode policy %s key: %d bytes, want 16", what, len(k))
		}
		return [16]byte(k), nil
	}
	switch kind {
	case recMeta:
		if len(k) != 0 {
			return errors.New("decode policy meta key: trailing bytes")
		}
		if del {
			r.meta = nil
			break
		}
		m, err := decodeMeta(value)
		if err != nil {
			return err
		}
		r.meta = &m
	case recOnce:
		h, err := fixed("once")
		if err != nil {
			return err
		}
		if del {
			delete(e.once, h)
			break
		}
		exp, err := decodeOnce(value)
		if err != nil {
			return err
		}
		e.once[h] = exp
	case recSeen:
		h, err := fixed("seen")
		if err != nil {
			return err
		}
		sk := seenKey{binary.LittleEndian.Uint64(h[:8]), binary.LittleEndian.Uint64(h[8:])}
		if del {
			delete(r.seen, sk)
			break
		}
		s, err := decodeSeen(value)
		if err != nil {
			return err
		}
		r.seen[sk] = s
	case recLife:
		lk, err := decodeLifeKey(k)
		if err != nil {
			return err
		}
		if del {
			delete(e.life, lk)
			break
		}
		a, err := decodeLife(value)
		if err != nil {
			return err
		}
		e.life[lk] = a
	case recSubject:
		sk, err := decodeSubjectKey(k)
		if err != nil {
			return err
		}
		if del {
			delete(e.subjects, e.subjectHash(sk.issuer, sk.client, sk.subject))
			break
		}
		st, err := decodeSubject(value)
		if err != nil {
			return err
		}
		st.key = sk
		e.subjects[e.subjectHash(sk.issuer, sk.client, sk.subject)] = st
	case recRefresh:
		fp, err := fixed("refresh")
		if err != nil {
			return err
		}
		if del {
			delete(e.refresh, fp)
			break
		}
		st, err := decodeRefresh(value)
		if err != nil {
			return err
		}
		e.refresh[fp] = st
	case recEndpoint:
		ep := string(k)
		if del {
			delete(e.endpoints, ep)
			break
		}
		st, err := decodeEndpoint(value)
		if err != nil {
			return err
		}
		e.endpoints[ep] = st
	case recApplied:
		pk, err := decodeAppliedKey(k)
		if err != nil {
			return err
		}
		if del {
			delete(e.applied, pk)
			break
		}
		pos, err := decodeApplied(value)
		if err != nil {
			return err
		}
		e.applied[pk] = pos
	default:
		return fmt.Errorf("decode policy state: unknown record kind %q", kind)
	}
	r.n++
	return nil
}

// finish places the seen keys, adopts the engine-wide scalars and drops what
// the current policy or bounds say must go; what it drops is recorded as
// changed, so the next write removes it from the topic too.
func (r *restorer) finish() {
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.changed
	if m := r.meta; m != nil {
		e.watermark, e.lifeDay, e.seenGen, e.svcKey = m.watermark, m.lifeDay, m.seenGen, m.svcKey
		e.resetServices()
	}
	c.markMeta()
	samePolicy := r.meta != nil && r.meta.digest == e.pol.Load().digest
	e.seen.reset()
	for k, s := range r.seen {
		switch {
		case !samePolicy:
			// Checked under another policy: checked again under this one,
			// as after a reload.
			c.markSeen(k)
		case s.gen == e.seenGen:
			e.seen.add(k, s.workload, true)
		case s.gen+1 == e.seenGen:
			e.seen.add(k, s.workload, false)
		default: // a generation that was dropped before its tombstones were written
			c.markSeen(k)
		}
	}
	e.lastPos = nil
	// A smaller policy.max_state than the one the state was written under.
	if len(e.once) > e.cfg.MaxState {
		e.sweepOnce()
	}
	for _, t := range []struct {
		n    int
		drop func()
	}{
		{len(e.life), func() { dropHalf(e.life, c.markLife) }},
		{len(e.subjects), e.dropHalfSubjects},
		{len(e.refresh), func() { dropHalf(e.refresh, c.markRefresh) }},
		{len(e.endpoints), func() { dropHalf(e.endpoints, c.markEndpoint) }},
	} {
		for n := t.n; n > e.cfg.MaxState; n /= 2 {
			t.drop()
		}
	}
}
