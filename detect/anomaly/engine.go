package anomaly

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Engine holds per-token state and raises alerts. It is safe for concurrent
// use: state is split into 2^n shards by state key, each behind its own lock.
//
// Every decision uses event time (TokenUse.Time, Revocation.Time); the clock
// given with WithClock is read only for Alert.DetectedAt.
type Engine struct {
	cfg      Config
	shards   []shard
	mask     uint32
	clock    func() time.Time
	ignore   map[uint32]struct{}
	revs     revTable
	skewMs   int64
	windowMs int64
	leewayMs int64
	idleMs   int64
	// latenessMs delays the sweep (Config.MaxLateness).
	latenessMs int64
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock sets the clock read for Alert.DetectedAt (default time.Now).
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.clock = now } }

// New returns an engine for cfg, which must be valid.
func New(cfg Config, opts ...Option) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("anomaly config: %w", err)
	}
	n := cfg.shardCount()
	e := &Engine{
		cfg:        cfg,
		shards:     make([]shard, n),
		mask:       uint32(n - 1),
		clock:      time.Now,
		ignore:     make(map[uint32]struct{}, len(cfg.IgnoreASNs)),
		skewMs:     cfg.ClockSkew.Milliseconds(),
		windowMs:   cfg.ConcurrentReplay.Window.Milliseconds(),
		leewayMs:   cfg.ExpiredTokenAccepted.Leeway.Milliseconds(),
		idleMs:     cfg.IdleTTL.Milliseconds(),
		latenessMs: cfg.MaxLateness.Milliseconds(),
	}
	for _, a := range cfg.IgnoreASNs {
		e.ignore[a] = struct{}{}
	}
	perShard := (cfg.MaxTokens + n - 1) / n
	perShardStrings := cfg.MaxInternedStrings / n
	for i := range e.shards {
		e.shards[i].limit = perShard
		e.shards[i].in.init(perShardStrings)
	}
	e.revs.init(cfg.PostRevocationUse.MaxRevocations, n)
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// KeyOf returns the state key of a use: for a JWT with a jti, a hash of its
// issuer and jti (so a re-encoded JWT and a revocation by jti find the same
// state); otherwise the token's fingerprint.
func KeyOf(u *tokenwatch.TokenUse) tokenwatch.Fingerprint {
	if u.JWT != nil && u.JWT.Jti != "" {
		return JTIKey(u.JWT.Iss, u.JWT.Jti)
	}
	return u.Fingerprint
}

// JTIKey is the state key of a JWT by issuer and jti: the first 16 bytes of
// SHA-256("tw/jti" || uvarint(len(iss)) || iss || jti). It is a
// cryptographic hash because jti and iss come from unverified tokens: a
// crafted pair must not land on another token's state.
func JTIKey(iss, jti string) tokenwatch.Fingerprint {
	var buf [160]byte
	b := append(buf[:0], "tw/jti"...)
	b = binary.AppendUvarint(b, uint64(len(iss)))
	b = append(b, iss...)
	b = append(b, jti...)
	sum := sha256.Sum256(b)
	var k tokenwatch.Fingerprint
	copy(k[:], sum[:16])
	return k
}

func (e *Engine) shardOf(k *tokenwatch.Fingerprint) *shard {
	return &e.shards[binary.LittleEndian.Uint32(k[8:12])&e.mask]
}

func (e *Engine) ignored(asn uint32) bool {
	if asn == 0 || len(e.ignore) == 0 {
		return false
	}
	_, ok := e.ignore[asn]
	return ok
}

// Observe checks u against its token's history, updates the state, and appends
// any alerts to dst. u is not retained.
func (e *Engine) Observe(u *tokenwatch.TokenUse, dst []tokenwatch.Alert) []tokenwatch.Alert {
	metricUses.Inc()
	return e.observe(u, dst)
}

// Process implements tokenwatch.Stage: it applies b.Revocations, then observes
// b.Uses in event-time order (stable, so equal times keep source order),
// appending alerts to b.Alerts.
func (e *Engine) Process(ctx context.Context, b *tokenwatch.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range b.Revocations {
		b.Alerts = e.Revoke(b.Revocations[i], b.Alerts)
	}
	if len(b.Uses) == 0 {
		return nil
	}
	metricUses.Add(float64(len(b.Uses)))
	sorted := true
	for i := 1; i < len(b.Uses); i++ {
		if b.Uses[i].Time.Before(b.Uses[i-1].Time) {
			sorted = false
			break
		}
	}
	if sorted {
		for i := range b.Uses {
			b.Alerts = e.observe(&b.Uses[i], b.Alerts)
		}
		return nil
	}
	op := orderPool.Get().(*[]int32)
	order := (*op)[:0]
	for i := range b.Uses {
		order = append(order, int32(i))
	}
	slices.SortStableFunc(order, func(x, y int32) int {
		return b.Uses[x].Time.Compare(b.Uses[y].Time)
	})
	for _, i := range order {
		b.Alerts = e.observe(&b.Uses[i], b.Alerts)
	}
	*op = order
	orderPool.Put(op)
	return nil
}

var orderPool = sync.Pool{New: func() any { s := make([]int32, 0, 256); return &s }}

// Len returns the number of tokens with state.
func (e *Engine) Len() int {
	n := 0
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		n += sh.live
		sh.mu.Unlock()
	}
	return n
}

// Forget drops the state of every token for which drop(key) is true and
// returns how many were dropped (an Owner forgets the keys of partitions it
// no longer owns).
func (e *Engine) Forget(drop func(key tokenwatch.Fingerprint) bool) int {
	n := 0
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		for idx := uint32(1); idx <= sh.slots; idx++ {
			s := sh.at(idx)
			if s.flags&stLive != 0 && drop(s.key) {
				sh.release(idx)
				metricTokens.Dec()
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// observe is Observe without the use counter.
func (e *Engine) observe(u *tokenwatch.TokenUse, dst []tokenwatch.Alert) []tokenwatch.Alert {
	key := KeyOf(u)
	ms := u.Time.UnixMilli()
	var rev revEntry
	revoked := false
	if e.cfg.PostRevocationUse.Enabled && !u.Leak && is2xx(u.Status) && e.revs.count.Load() > 0 {
		rev, revoked = e.revs.lookup(u, ms, e.cfg.PostRevocationUse.TTL.Milliseconds())
	}
	sh := e.shardOf(&key)
	sh.mu.Lock()
	if ms > sh.wm {
		sh.wm = ms
	}
	idx := sh.lookup(&key)
	if idx != 0 && sh.at(idx).expired(ms, e.cfg.IdleTTL, e.cfg.ExpiryGrace) {
		sh.release(idx)
		metricTokens.Dec()
		metricExpirations.Inc()
		idx = 0
	}
	if idx == 0 {
		idx = e.newState(sh, key, ms)
	} else {
		sh.touch(idx)
	}
	s := sh.at(idx)
	s.setToken(u)
	if u.JWT != nil && u.JWT.Exp > 0 {
		s.exp = clampU32(u.JWT.Exp)
	}
	o, fits := e.makeObs(sh, s, u, ms)
	if !fits {
		metricLate.Inc()
	}
	r := ruleCtx{e: e, sh: sh, s: s, u: u, o: &o, ms: ms, key: key}
	if u.Leak {
		dst = r.leak(dst)
		if fits {
			before, had := s.leakMs()
			s.noteLeak(o)
			if !had || ms < before {
				// The leak sighting may reach us after uses it explains (an
				// application log read behind the auth logs): judge those now.
				dst = r.replaysBeforeLeakSeen(dst)
			}
		}
	} else {
		dst = r.singleUse(dst, rev, revoked)
		if fits {
			dst = r.pairs(dst)
			dst = r.leakedReplay(dst)
			if s.mergeable(&o) {
				s.ring[s.n-1].merge(&o)
			} else {
				s.insert(o)
			}
		}
	}
	e.sweepStep(sh)
	sh.mu.Unlock()
	return dst
}

// merge folds o (a later use from the same client) into r, widening r's span.
func (r *obs) merge(o *obs) {
	span := (int64(o.dt)-int64(r.dt)+999)/1000 + spanBound(r.span())
	if spanBound(r.span()) == math.MaxInt64 {
		span = math.MaxInt64
	}
	r.stat = o.status() | spanCode(span)<<spanShift
	r.dt, r.poff, r.disp = o.dt, o.poff, o.disp
	if o.hasLoc() {
		r.lat, r.lon, r.radius, r.city, r.country, r.cont, r.asn = o.lat, o.lon, o.radius, o.city, o.country, o.cont, o.asn
		r.bits = o.bits
	}
}

// noteLeak records a leak sighting: the earliest leak time, and the earliest
// sighting as an observation (later sightings add nothing the alert needs).
func (s *state) noteLeak(o obs) {
	if s.flags&stHasLeak == 0 || o.dt < s.leakDt {
		s.leakDt = o.dt
		s.flags |= stHasLeak
	}
	for i := 0; i < int(s.n); i++ {
		if s.ring[i].leak() {
			if s.ring[i].dt <= o.dt {
				return
			}
			copy(s.ring[i:], s.ring[i+1:s.n])
			s.n--
			s.ring[s.n] = obs{}
			break
		}
	}
	s.insert(o)
}

// newState allocates state for key, evicting a token that was not used
// recently (CLOCK) when the shard is full.
func (e *Engine) newState(sh *shard, key tokenwatch.Fingerprint, ms int64) uint32 {
	if sh.live >= sh.limit {
		victim, expired := sh.victim(e.cfg.IdleTTL, e.cfg.ExpiryGrace)
		sh.release(victim)
		metricTokens.Dec()
		if expired {
			metricExpirations.Inc()
		} else {
			metricEvictions.Inc()
		}
	}
	idx := sh.alloc(key)
	metricTokens.Inc()
	sh.at(idx).setBase(ms)
	return idx
}

// sweepStep checks one slot at the shard's sweep cursor every sweepEvery
// operations and frees it when it has been expired for max_lateness at the
// shard's newest event time, so the memory of dead tokens is
// returned within sweepEvery passes over the shard even when the shard is not
// full (a full shard reclaims expired tokens first anyway).
func (e *Engine) sweepStep(sh *shard) {
	sh.sweepTick++
	if sh.sweepTick < sweepEvery || sh.slots == 0 {
		return
	}
	sh.sweepTick = 0
	sh.sweep++
	if sh.sweep > sh.slots {
		sh.sweep = 1
	}
	s := sh.at(sh.sweep)
	if s.flags&stLive != 0 && s.expired(sh.wm-e.latenessMs, e.cfg.IdleTTL, e.cfg.ExpiryGrace) {
		sh.release(sh.sweep)
		metricTokens.Dec()
		metricExpirations.Inc()
	}
}

const sweepEvery = 4

// makeObs builds the observation of u relative to s, rebasing s when u is far
// newer. fits is false when u is too old to be kept.
func (e *Engine) makeObs(sh *shard, s *state, u *tokenwatch.TokenUse, ms int64) (obs, bool) {
	var o obs
	dt, ok := s.rel(ms)
	if !ok {
		if ms < s.baseMs() {
			return o, false
		}
		s.rebase(ms)
		dt, _ = s.rel(ms)
	}
	o.dt = dt
	if u.IP.IsValid() {
		o.ip = u.IP.As16()
	}
	o.poff = packOrigin(u.Origin)
	g := &u.Geo
	o.asn = g.ASN
	if len(g.Country) == 2 {
		o.country = [2]byte{g.Country[0], g.Country[1]}
	}
	o.cont = continentCode(g.Continent)
	// Most uses of a token come from the client of its newest observation:
	// reuse that observation's interned strings and UA family when they match,
	// which saves hashing the user agent and classifying it again.
	var prev *obs
	if s.n > 0 {
		prev = &s.ring[s.n-1]
	}
	var dispDone, cityDone bool
	if prev != nil && prev.disp != 0 {
		if d := sh.in.dispOf(prev.disp); d.ua == u.UserAgent && d.service == u.Service && d.source == u.Origin.Source {
			o.disp, dispDone = prev.disp, true
			o.bits = uint8(prev.fam())
		}
	}
	if !dispDone {
		o.bits = uint8(classifyUA(u.UserAgent))
	}
	if prev != nil && prev.city != 0 && sh.in.cityOf(prev.city) == g.City {
		o.city, cityDone = prev.city, true
	}
	if g.HasLocation {
		o.lat, o.lon = toCoord(g.Lat), toCoord(g.Lon)
		o.radius = g.RadiusKm
		o.bits |= obsHasLoc
	}
	if g.Label != "" {
		o.bits |= obsLabeled
	}
	if u.Leak {
		o.bits |= obsLeak
	}
	if u.Status > 0 && u.Status <= statusMask {
		o.stat = uint16(u.Status)
	}
	okc, okd := true, true
	if !cityDone {
		o.city, okc = sh.in.city(g.City)
	}
	if !dispDone {
		o.disp, okd = sh.in.disp(dispKey{u.UserAgent, u.Service, u.Origin.Source})
	}
	if !okc || !okd {
		metricInternFull.Inc()
		// Compact when enough misses accumulated since the last compaction.
		if sh.in.misses > sh.in.limit/4 {
			sh.compact()
			o.city, _ = sh.in.city(g.City)
			o.disp, _ = sh.in.disp(dispKey{u.UserAgent, u.Service, u.Origin.Source})
		}
	}
	if !cityDone || prev.asn != g.ASN {
		sh.in.org(g.ASN, g.ASOrg)
	}
	return o, true
}

func clampU32(v int64) uint32 {
	if v < 0 {
		return 0
	}
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

func is2xx(status int) bool { return status >= 200 && status < 300 }

// ---- revocations --------------------------------------------------------------

type revEntry struct {
	ms     int64
	reason string
}

type revShard struct {
	mu    sync.Mutex
	m     map[tokenwatch.Fingerprint]revEntry
	fifo  []tokenwatch.Fingerprint // insertion order, for eviction when full
	head  int
	limit int
	_     [64]byte
}

// revTable holds revocations by fingerprint and by (issuer, jti) key, sharded
// by key. A revocation may arrive before the token is ever seen.
type revTable struct {
	shards []revShard
	mask   uint32
	count  atomic.Int64
}

func (t *revTable) init(limit, n int) {
	t.shards = make([]revShard, n)
	t.mask = uint32(n - 1)
	per := (limit + n - 1) / n
	for i := range t.shards {
		t.shards[i].m = map[tokenwatch.Fingerprint]revEntry{}
		t.shards[i].limit = per
	}
}

func (t *revTable) shard(k *tokenwatch.Fingerprint) *revShard {
	return &t.shards[binary.LittleEndian.Uint32(k[8:12])&t.mask]
}

// put stores ent under k unless an earlier revocation is known; it reports
// whether it stored it.
func (t *revTable) put(k tokenwatch.Fingerprint, ent revEntry) bool {
	rs := t.shard(&k)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if old, ok := rs.m[k]; ok {
		if ent.ms >= old.ms {
			return false
		}
		rs.m[k] = ent
		return true
	}
	if len(rs.m) >= rs.limit && len(rs.fifo) > 0 {
		delete(rs.m, rs.fifo[rs.head])
		rs.fifo[rs.head] = k
		rs.head = (rs.head + 1) % len(rs.fifo)
	} else {
		rs.fifo = append(rs.fifo, k)
		t.count.Add(1)
	}
	rs.m[k] = ent
	return true
}

func (t *revTable) get(k tokenwatch.Fingerprint) (revEntry, bool) {
	rs := t.shard(&k)
	rs.mu.Lock()
	ent, ok := rs.m[k]
	rs.mu.Unlock()
	return ent, ok
}

// lookup returns the earliest revocation that applies to u and has not aged
// out (ttl) at event time ms.
func (t *revTable) lookup(u *tokenwatch.TokenUse, ms, ttl int64) (revEntry, bool) {
	var best revEntry
	found := false
	try := func(k tokenwatch.Fingerprint) {
		if ent, ok := t.get(k); ok && ms-ent.ms <= ttl && (!found || ent.ms < best.ms) {
			best, found = ent, true
		}
	}
	if !u.Fingerprint.IsZero() {
		try(u.Fingerprint)
	}
	if u.JWT != nil && u.JWT.Jti != "" {
		try(JTIKey(u.JWT.Iss, u.JWT.Jti))
		if u.JWT.Iss != "" {
			try(JTIKey("", u.JWT.Jti))
		}
	}
	return best, found
}

// RevocationKeys returns the keys a revocation is stored under (its
// fingerprint, and its (issuer, jti) key).
func RevocationKeys(r *tokenwatch.Revocation) []tokenwatch.Fingerprint {
	var ks []tokenwatch.Fingerprint
	if !r.Fingerprint.IsZero() {
		ks = append(ks, r.Fingerprint)
	}
	if r.JTI != "" {
		ks = append(ks, JTIKey(r.Issuer, r.JTI))
	}
	return ks
}

// Revoke records that a token (by fingerprint) or a JWT (by jti, with or
// without issuer) was revoked at r.Time, so that a later successful use raises
// post_revocation_use. A revocation can be read after the uses it covers (the
// revocation topic is fetched at its own pace, an identity provider batches
// its events): Revoke also judges the token's kept observations and appends a
// post_revocation_use alert to dst for each 2xx use later than the revocation,
// with the id the in-order path gives (see postRevocationID). Revocations
// without a time or without any token reference are counted and ignored.
func (e *Engine) Revoke(r tokenwatch.Revocation, dst []tokenwatch.Alert) []tokenwatch.Alert {
	ent, changed := e.record(r)
	if !changed {
		return dst
	}
	if !r.Fingerprint.IsZero() {
		dst = e.judgeLate(r.Fingerprint, &r, ent, dst)
	}
	if r.JTI != "" {
		dst = e.judgeLate(JTIKey(r.Issuer, r.JTI), &r, ent, dst)
	}
	return dst
}

// record stores a revocation. changed is false when it was invalid, or no
// earlier than what was known under each of its keys (its uses were judged).
func (e *Engine) record(r tokenwatch.Revocation) (ent revEntry, changed bool) {
	if !e.cfg.PostRevocationUse.Enabled {
		return ent, false
	}
	if r.Time.IsZero() || (r.Fingerprint.IsZero() && r.JTI == "") {
		metricRevocationsInvalid.Inc()
		return ent, false
	}
	metricRevocations.Inc()
	ent = revEntry{ms: r.Time.UnixMilli(), reason: r.Reason}
	if !r.Fingerprint.IsZero() {
		changed = e.revs.put(r.Fingerprint, ent)
	}
	if r.JTI != "" {
		changed = e.revs.put(JTIKey(r.Issuer, r.JTI), ent) || changed
	}
	return ent, changed
}

// judgeLate raises post_revocation_use for the kept 2xx uses of the token with
// state key key that came more than clock_skew after the revocation (and
// within its TTL). Uses that were already judged against this revocation
// raised the same dedupe key, so nothing is raised twice. A use merged into
// an observation is judged by the observation's newest use. The state is
// found by fingerprint, or by (issuer, jti) for a JWT with a jti: a
// revocation by jti alone finds only tokens without an issuer, and one by
// fingerprint only tokens without a jti (their state keys).
func (e *Engine) judgeLate(key tokenwatch.Fingerprint, r *tokenwatch.Revocation, ent revEntry, dst []tokenwatch.Alert) []tokenwatch.Alert {
	sh := e.shardOf(&key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	idx := sh.lookup(&key)
	if idx == 0 {
		return dst
	}
	s := sh.at(idx)
	ttl := e.cfg.PostRevocationUse.TTL.Milliseconds()
	rc := ruleCtx{e: e, sh: sh, s: s, key: key}
	for i := 0; i < int(s.n); i++ {
		o := &s.ring[i]
		ms := s.ms(o.dt)
		if o.leak() || !is2xx(int(o.status())) || ms <= ent.ms+e.skewMs || ms-ent.ms > ttl {
			continue
		}
		if rc.suppressed(tokenwatch.AlertPostRevocationUse, dedupeKey(tokenwatch.AlertPostRevocationUse, o, nil)) {
			continue
		}
		dst = rc.lateRevocationAlert(dst, o, r, ms-ent.ms)
		metricLateRevocations.Inc()
	}
	return dst
}

// Drop removes the state of the token with state key key, if any.
func (e *Engine) Drop(key tokenwatch.Fingerprint) {
	sh := e.shardOf(&key)
	sh.mu.Lock()
	if idx := sh.lookup(&key); idx != 0 {
		sh.release(idx)
		metricTokens.Dec()
	}
	sh.mu.Unlock()
}
