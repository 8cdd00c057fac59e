package anomaly

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/internal/binrec"
)

// Binary encodings for the Kafka scale-out: a token use on the repartition
// topic, and a token's state on the changelog topic. Both start with a version
// byte; neither ever contains a raw token (a TokenUse has none; Sealed values
// are sealed).

const (
	useVersion   = 1
	stateVersion = 2 // 2 added the token's fingerprint; 1 is still read
	// maxField bounds any one decoded string or byte field.
	maxField = 1 << 20
	// maxList bounds decoded list lengths (aud, scope).
	maxList = 1024
)

// reader is the strict decoder of these records (package binrec) with this
// package's field types on top.
type reader struct{ binrec.Reader }

func (r *reader) u32() uint32 {
	v := r.Uvarint()
	if v > math.MaxUint32 {
		r.Fail(errors.New("value out of range"))
		return 0
	}
	return uint32(v)
}

func (r *reader) i32() int32 {
	v := r.Varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.Fail(errors.New("value out of range"))
		return 0
	}
	return int32(v)
}

func (r *reader) str() string {
	n := r.Uvarint()
	if n > maxField {
		r.Fail(errors.New("field too long"))
		return ""
	}
	return string(r.Bytes(int(n)))
}

func (r *reader) blob() []byte {
	n := r.Uvarint()
	if n > maxField {
		r.Fail(errors.New("field too long"))
		return nil
	}
	if n == 0 {
		return nil
	}
	return append([]byte(nil), r.Bytes(int(n))...)
}

func (r *reader) f64() float64 {
	p := r.Bytes(8)
	if p == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(p))
}

func (r *reader) list() []string {
	n := r.Uvarint()
	if n > maxList {
		r.Fail(errors.New("list too long"))
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for range n {
		out = append(out, r.str())
		if r.Err != nil {
			return nil
		}
	}
	return out
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendList(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendStr(b, s)
	}
	return b
}

func appendF64(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// Token-use flag bits.
const (
	ufLeak = 1 << iota
	ufDPoP
	ufHeaders
	ufJWT
	ufHasLoc
	ufHasTime
)

// JWT flag bits.
const (
	jfNonce = 1 << iota
	jfAtHash
	jfExpired
	jfAlgNone
)

// AppendUse appends the binary encoding of u to dst.
func AppendUse(dst []byte, u *tokenwatch.TokenUse) []byte {
	b := append(dst, useVersion)
	b = append(b, u.Fingerprint[:]...)
	var f byte
	if u.Leak {
		f |= ufLeak
	}
	if u.DPoPProof {
		f |= ufDPoP
	}
	if u.HeadersLogged {
		f |= ufHeaders
	}
	if u.JWT != nil {
		f |= ufJWT
	}
	if u.Geo.HasLocation {
		f |= ufHasLoc
	}
	if !u.Time.IsZero() {
		f |= ufHasTime
	}
	b = append(b, f)
	if !u.Time.IsZero() {
		b = binary.AppendVarint(b, u.Time.Unix())
		b = binary.AppendUvarint(b, uint64(u.Time.Nanosecond()))
	}
	switch {
	case !u.IP.IsValid():
		b = append(b, 0)
	case u.IP.Is4():
		a := u.IP.As4()
		b = append(b, 4)
		b = append(b, a[:]...)
	default:
		a := u.IP.As16()
		b = append(b, 16)
		b = append(b, a[:]...)
	}
	for _, s := range [...]string{u.Kind, u.Rule, u.Redacted, u.UserAgent, u.User, u.Method, u.Path, u.Service, u.Host, u.Scheme, u.Param} {
		b = appendStr(b, s)
	}
	b = binary.AppendVarint(b, int64(u.Status))
	g := &u.Geo
	b = binary.AppendUvarint(b, uint64(g.ASN))
	for _, s := range [...]string{g.ASOrg, g.Country, g.Continent, g.City, g.Label} {
		b = appendStr(b, s)
	}
	b = appendF64(b, g.Lat)
	b = appendF64(b, g.Lon)
	b = binary.AppendUvarint(b, uint64(g.RadiusKm))
	if j := u.JWT; j != nil {
		for _, s := range [...]string{j.Alg, j.Kid, j.Typ, j.Enc, j.Iss, j.Sub, j.Jti, j.ClientID, j.CnfJKT, j.CnfX5T} {
			b = appendStr(b, s)
		}
		b = appendList(b, j.Aud)
		b = appendList(b, j.Scope)
		b = binary.AppendVarint(b, j.Exp)
		b = binary.AppendVarint(b, j.Iat)
		b = binary.AppendVarint(b, j.Nbf)
		b = binary.AppendVarint(b, j.LifetimeSeconds)
		var jf byte
		if j.HasNonce {
			jf |= jfNonce
		}
		if j.HasAtHash {
			jf |= jfAtHash
		}
		if j.Expired {
			jf |= jfExpired
		}
		if j.AlgNone {
			jf |= jfAlgNone
		}
		b = append(b, jf)
	}
	b = binary.AppendUvarint(b, uint64(len(u.Sealed)))
	b = append(b, u.Sealed...)
	b = appendStr(b, u.Origin.Source)
	b = binary.AppendVarint(b, int64(u.Origin.Partition))
	b = binary.AppendVarint(b, u.Origin.Offset)
	b = binary.AppendUvarint(b, uint64(u.Index))
	return b
}

// DecodeUse decodes an AppendUse encoding into u (overwriting it). It never
// panics on malformed input.
func DecodeUse(data []byte, u *tokenwatch.TokenUse) error {
	r := reader{binrec.Reader{B: data}}
	if v := r.Byte(); r.Err == nil && v != useVersion {
		return fmt.Errorf("decode token use: unknown version %d", v)
	}
	*u = tokenwatch.TokenUse{}
	copy(u.Fingerprint[:], r.Bytes(16))
	f := r.Byte()
	u.Leak, u.DPoPProof, u.HeadersLogged = f&ufLeak != 0, f&ufDPoP != 0, f&ufHeaders != 0
	if f&ufHasTime != 0 {
		sec := r.Varint()
		nsec := r.Uvarint()
		if nsec >= 1e9 {
			r.Fail(errors.New("nanoseconds out of range"))
		}
		u.Time = time.Unix(sec, int64(nsec)).UTC()
	}
	switch n := r.Byte(); n {
	case 0:
	case 4:
		u.IP = netip.AddrFrom4([4]byte(padTo(r.Bytes(4), 4)))
	case 16:
		u.IP = netip.AddrFrom16([16]byte(padTo(r.Bytes(16), 16)))
	default:
		r.Fail(fmt.Errorf("bad address length %d", n))
	}
	for _, p := range [...]*string{&u.Kind, &u.Rule, &u.Redacted, &u.UserAgent, &u.User, &u.Method, &u.Path, &u.Service, &u.Host, &u.Scheme, &u.Param} {
		*p = r.str()
	}
	st := r.Varint()
	if st < math.MinInt32 || st > math.MaxInt32 {
		r.Fail(errors.New("status out of range"))
	}
	u.Status = int(st)
	g := &u.Geo
	g.ASN = r.u32()
	for _, p := range [...]*string{&g.ASOrg, &g.Country, &g.Continent, &g.City, &g.Label} {
		*p = r.str()
	}
	g.Lat, g.Lon = r.f64(), r.f64()
	if !(math.Abs(g.Lat) <= 90 && math.Abs(g.Lon) <= 180) { // NaN fails too
		r.Fail(errors.New("coordinates out of range"))
	}
	rad := r.Uvarint()
	if rad > math.MaxUint16 {
		r.Fail(errors.New("radius out of range"))
	}
	g.RadiusKm = uint16(rad)
	g.HasLocation = f&ufHasLoc != 0
	if f&ufJWT != 0 {
		j := &tokenwatch.JWTInfo{}
		for _, p := range [...]*string{&j.Alg, &j.Kid, &j.Typ, &j.Enc, &j.Iss, &j.Sub, &j.Jti, &j.ClientID, &j.CnfJKT, &j.CnfX5T} {
			*p = r.str()
		}
		j.Aud = r.list()
		j.Scope = r.list()
		j.Exp, j.Iat, j.Nbf, j.LifetimeSeconds = r.Varint(), r.Varint(), r.Varint(), r.Varint()
		jf := r.Byte()
		j.HasNonce, j.HasAtHash, j.Expired, j.AlgNone = jf&jfNonce != 0, jf&jfAtHash != 0, jf&jfExpired != 0, jf&jfAlgNone != 0
		u.JWT = j
	}
	u.Sealed = r.blob()
	u.Origin.Source = r.str()
	u.Origin.Partition = r.i32()
	u.Origin.Offset = r.Varint()
	idx := r.Uvarint()
	if idx > math.MaxInt32 {
		r.Fail(errors.New("index out of range"))
	}
	u.Index = int(idx)
	if r.Err == nil && len(r.B) != 0 {
		r.Fail(fmt.Errorf("%d trailing bytes", len(r.B)))
	}
	if r.Err != nil {
		return fmt.Errorf("decode token use: %w", r.Err)
	}
	return nil
}

func padTo(p []byte, n int) []byte {
	if len(p) == n {
		return p
	}
	return make([]byte, n)
}

// ---- state snapshots ------------------------------------------------------------

// Snapshot appends the encoded state of the token with state key key to dst
// (see KeyOf); ok is false when the engine holds no state for it. The
// encoding carries the display strings, so it can be restored into another
// engine (Restore).
func (e *Engine) Snapshot(dst []byte, key tokenwatch.Fingerprint) ([]byte, bool) {
	sh := e.shardOf(&key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	idx := sh.lookup(&key)
	if idx == 0 {
		return dst, false
	}
	s := sh.at(idx)
	b := append(dst, stateVersion)
	b = append(b, s.key[:]...)
	b = append(b, s.fp[:]...)
	b = binary.AppendVarint(b, s.baseMs())
	b = binary.AppendUvarint(b, 0) // was first seen (version 1); unused
	b = binary.AppendUvarint(b, uint64(s.exp))
	b = append(b, s.flags&(stLeakAlerted|stHasLeak))
	b = binary.AppendVarint(b, int64(s.leakDt))
	for _, a := range s.alerted {
		b = binary.AppendUvarint(b, uint64(a))
	}
	b = append(b, s.alertAt, s.n)
	for i := 0; i < int(s.n); i++ {
		o := &s.ring[i]
		b = append(b, o.ip[:]...)
		b = binary.AppendUvarint(b, o.poff)
		b = binary.AppendVarint(b, int64(o.dt))
		b = binary.AppendVarint(b, int64(o.lat))
		b = binary.AppendVarint(b, int64(o.lon))
		b = binary.AppendUvarint(b, uint64(o.asn))
		b = binary.AppendUvarint(b, uint64(o.radius))
		b = binary.AppendUvarint(b, uint64(o.stat))
		b = append(b, o.country[0], o.country[1], o.cont, o.bits)
		d := sh.in.dispOf(o.disp)
		b = appendStr(b, sh.in.cityOf(o.city))
		b = appendStr(b, d.ua)
		b = appendStr(b, d.service)
		b = appendStr(b, d.source)
		b = appendStr(b, sh.in.orgs[o.asn])
	}
	return b, true
}

// addMs adds rem to the relative time dt, failing r when it overflows.
func addMs(r *reader, dt, rem int32) int32 {
	d := int64(dt) + int64(rem)
	if d > math.MaxInt32 {
		r.Fail(errors.New("relative time out of range"))
		return 0
	}
	return int32(d)
}

type snapObs struct {
	o                              obs
	city, ua, service, source, org string
}

// SnapshotKey returns the state key a snapshot belongs to.
func SnapshotKey(snap []byte) (tokenwatch.Fingerprint, error) {
	var k tokenwatch.Fingerprint
	if len(snap) < 17 || snap[0] < 1 || snap[0] > stateVersion {
		return k, errors.New("decode token state: not a version 1 or 2 state")
	}
	copy(k[:], snap[1:17])
	return k, nil
}

// Restore replaces the state of the token a snapshot belongs to. It never
// panics on malformed input.
func (e *Engine) Restore(snap []byte) error {
	r := reader{binrec.Reader{B: snap}}
	v := r.Byte()
	if r.Err == nil && (v < 1 || v > stateVersion) {
		return fmt.Errorf("decode token state: unknown version %d", v)
	}
	var s state
	copy(s.key[:], r.Bytes(16))
	s.fp = s.key
	if v >= 2 {
		copy(s.fp[:], r.Bytes(16))
	}
	baseMs := r.Varint()
	if baseMs < 0 || baseMs/1000 > math.MaxUint32 {
		r.Fail(errors.New("base time out of range"))
	}
	s.baseSec = uint32(baseMs / 1000)
	rem := int32(baseMs % 1000) // added to every relative time below
	_ = r.u32()                 // first seen (unused)
	s.exp = r.u32()
	s.flags = (r.Byte() & (stLeakAlerted | stHasLeak)) | stLive
	s.leakDt = addMs(&r, r.i32(), rem)
	for i := range s.alerted {
		k := r.u32()
		if v < 2 {
			k = 0 // version 1 kept 32-bit keys of another hash: forget them
		} else if k > math.MaxUint16 {
			r.Fail(errors.New("dedupe key out of range"))
		}
		s.alerted[i] = uint16(k)
	}
	s.alertAt = r.Byte() % uint8(len(s.alerted))
	n := int(r.Byte())
	if n > ringSize {
		r.Fail(fmt.Errorf("%d observations, at most %d", n, ringSize))
		n = 0
	}
	var list [ringSize]snapObs
	for i := 0; i < n && r.Err == nil; i++ {
		so := &list[i]
		o := &so.o
		copy(o.ip[:], r.Bytes(16))
		o.poff = r.Uvarint()
		o.dt = addMs(&r, r.i32(), rem)
		o.lat, o.lon = r.i32(), r.i32()
		o.asn = r.u32()
		rad, st := r.Uvarint(), r.Uvarint()
		if rad > math.MaxUint16 || st > math.MaxUint16 {
			r.Fail(errors.New("value out of range"))
		}
		o.radius, o.stat = uint16(rad), uint16(st)
		o.country[0], o.country[1], o.cont, o.bits = r.Byte(), r.Byte(), r.Byte(), r.Byte()
		so.city, so.ua, so.service, so.source, so.org = r.str(), r.str(), r.str(), r.str(), r.str()
		if i > 0 && o.dt < list[i-1].o.dt {
			r.Fail(errors.New("observations out of order"))
		}
	}
	if r.Err == nil && len(r.B) != 0 {
		r.Fail(fmt.Errorf("%d trailing bytes", len(r.B)))
	}
	if r.Err == nil && n == 0 {
		r.Fail(errors.New("no observations"))
	}
	if r.Err != nil {
		return fmt.Errorf("decode token state: %w", r.Err)
	}
	key := s.key
	sh := e.shardOf(&key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if idx := sh.lookup(&key); idx != 0 {
		sh.release(idx)
		metricTokens.Dec()
	}
	idx := e.newState(sh, key, s.baseMs())
	st := sh.at(idx)
	*st = s
	st.flags |= stRef
	st.n = uint8(n)
	for i := 0; i < n; i++ {
		so := &list[i]
		so.o.city, _ = sh.in.city(so.city)
		so.o.disp, _ = sh.in.disp(dispKey{so.ua, so.service, so.source})
		sh.in.org(so.o.asn, so.org)
		st.ring[i] = so.o
	}
	if last := st.lastMs(); last > sh.wm {
		sh.wm = last
	}
	return nil
}
