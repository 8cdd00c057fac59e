package anomaly

import (
	"encoding/binary"

	"github.com/tokenwatch/tokenwatch"
)

// ruleCtx is one use being judged, under its shard's lock.
type ruleCtx struct {
	e   *Engine
	sh  *shard
	s   *state
	u   *tokenwatch.TokenUse
	o   *obs // the use as an observation (dt relative to the state's base)
	ms  int64
	key tokenwatch.Fingerprint
}

// dedupeKey hashes an alert type with the networks involved: the engine raises
// an alert of a type for a token once per distinct set of networks (among the
// last few it raised), so a storm of identical evidence is one alert. The key
// is 16 bits, the type in the top 3 and a hash of the networks below, so keys
// of different types never collide; two network sets of one type collide
// with probability 2^-13, which at worst folds a further alert of a type the
// token already raised into the previous one (the alert policy merges those
// into updates anyway).
func dedupeKey(typ string, a, b *obs) uint16 {
	h := uint32(2166136261)
	mix := func(v uint32) {
		for range 4 {
			h ^= v & 0xff
			h *= 16777619
			v >>= 8
		}
	}
	na, nb := netID(a), netID(b)
	if nb < na {
		na, nb = nb, na
	}
	mix(na)
	mix(nb)
	return uint16(typeIndex(typ)+1)<<13 | uint16(h^h>>16)&(1<<13-1)
}

// netID names an observation's network for deduplication: its ASN, or a hash
// of its address when the ASN is unknown.
func netID(o *obs) uint32 {
	if o == nil {
		return 0
	}
	if o.asn != 0 {
		return o.asn
	}
	return binary.LittleEndian.Uint32(o.ip[12:]) ^ binary.LittleEndian.Uint32(o.ip[4:8])
}

func (r *ruleCtx) suppressed(typ string, k uint16) bool {
	if r.s.seenAlert(k) {
		suppressedCounters[typeIndex(typ)].Inc()
		return true
	}
	return false
}

// leak raises token_leak once per token.
func (r *ruleCtx) leak(dst []tokenwatch.Alert) []tokenwatch.Alert {
	if !r.e.cfg.TokenLeak.Enabled || r.s.flags&stLeakAlerted != 0 {
		return dst
	}
	r.s.flags |= stLeakAlerted
	return r.alert(dst, tokenwatch.AlertTokenLeak, nil, summaryLeak(r.u))
}

// singleUse runs the rules that need only the use itself: alg_none_accepted,
// expired_token_accepted and post_revocation_use. All require a 2xx response:
// a 401/403 after expiry or revocation is the system working.
func (r *ruleCtx) singleUse(dst []tokenwatch.Alert, rev revEntry, revoked bool) []tokenwatch.Alert {
	u := r.u
	if !is2xx(u.Status) {
		return dst
	}
	cfg := &r.e.cfg
	if cfg.AlgNoneAccepted.Enabled && u.JWT != nil && u.JWT.AlgNone {
		if !r.suppressed(tokenwatch.AlertAlgNoneAccepted, dedupeKey(tokenwatch.AlertAlgNoneAccepted, r.o, nil)) {
			dst = r.alert(dst, tokenwatch.AlertAlgNoneAccepted, nil, summaryAlgNone(u))
		}
	}
	if cfg.ExpiredTokenAccepted.Enabled && u.JWT != nil && u.JWT.Exp > 0 {
		expMs := u.JWT.Exp * 1000
		if r.ms > expMs+r.e.leewayMs {
			if !r.suppressed(tokenwatch.AlertExpiredTokenAccepted, dedupeKey(tokenwatch.AlertExpiredTokenAccepted, r.o, nil)) {
				dst = r.alert(dst, tokenwatch.AlertExpiredTokenAccepted, nil, summaryExpired(u, r.ms-expMs))
			}
		}
	}
	if revoked && r.ms > rev.ms+r.e.skewMs {
		if !r.suppressed(tokenwatch.AlertPostRevocationUse, dedupeKey(tokenwatch.AlertPostRevocationUse, r.o, nil)) {
			dst = r.alert(dst, tokenwatch.AlertPostRevocationUse, nil, summaryRevoked(u, r.ms-rev.ms, rev.reason))
		}
	}
	return dst
}

// eligible reports whether an observation can place a client on a network:
// a use (not a leak sighting) that was not rejected, from a public address
// outside the ignored (CDN/proxy) networks.
func (e *Engine) eligible(o *obs) bool {
	return !o.leak() && !o.rejected() && o.hasIP() && !o.labeled() && !e.ignored(o.asn)
}

// sameClient reports whether two observations are one client by address:
// the same IP, one IPv6 /64 (privacy addresses), or one IPv6 /48 of one ASN.
func sameClient(a, b *obs) bool {
	if a.ip == b.ip {
		return true
	}
	if a.is4() || b.is4() {
		return false
	}
	if [8]byte(a.ip[:8]) == [8]byte(b.ip[:8]) {
		return true
	}
	return a.asn != 0 && a.asn == b.asn && [6]byte(a.ip[:6]) == [6]byte(b.ip[:6])
}

// distanceKm is the great-circle distance minus both accuracy radii (>= 0);
// ok is false when either location is unknown.
func distanceKm(a, b *obs) (float64, bool) {
	if !a.hasLoc() || !b.hasLoc() {
		return 0, false
	}
	d := haversineKm(fromCoord(a.lat), fromCoord(a.lon), fromCoord(b.lat), fromCoord(b.lon))
	d -= float64(a.radius) + float64(b.radius)
	if d < 0 {
		d = 0
	}
	return d, true
}

func absMs(d int64) int64 {
	if d < 0 {
		return -d
	}
	return d
}

// travel judges the pair (a, b) for impossible_travel and returns the implied
// speed in km/h when it is impossible.
func (e *Engine) travel(a, b *obs, dtMs int64) (dist, speed float64, ok bool) {
	c := &e.cfg.ImpossibleTravel
	if !c.Enabled || (a.asn != 0 && a.asn == b.asn) || sameClient(a, b) {
		return 0, 0, false
	}
	// A VPN or corporate egress in the same country moves the client, not its
	// software: the exemption holds while the user-agent family stays the same.
	if c.IgnoreSameCountry && a.country != [2]byte{} && a.country == b.country &&
		(a.fam() == b.fam() || !a.fam().known() || !b.fam().known()) {
		return 0, 0, false
	}
	d, known := distanceKm(a, b)
	if !known || d < c.MinDistanceKm {
		return 0, 0, false
	}
	hours := float64(dtMs+e.skewMs) / 3.6e6
	if hours <= 0 {
		hours = 1.0 / 3.6e6
	}
	v := d / hours
	return d, v, v > c.MaxSpeedKmh
}

// concurrentReason values.
const (
	reasonNone = iota
	reasonCountries
	reasonClients
)

// concurrent judges the pair (a, b) for concurrent_replay: inside the window,
// two known and different ASNs that are not one client by address, and
// either two countries far enough apart or two different client families.
func (e *Engine) concurrent(a, b *obs, dtMs int64) int {
	c := &e.cfg.ConcurrentReplay
	if !c.Enabled || dtMs > e.windowMs || a.asn == 0 || b.asn == 0 || a.asn == b.asn || sameClient(a, b) {
		return reasonNone
	}
	if a.country != [2]byte{} && b.country != [2]byte{} && a.country != b.country {
		if d, known := distanceKm(a, b); !known || d >= c.MinDistanceKm {
			return reasonCountries
		}
	}
	if c.UserAgentFamilies && a.fam().known() && b.fam().known() && a.fam() != b.fam() {
		return reasonClients
	}
	return reasonNone
}

// pairs runs impossible_travel and concurrent_replay of the use against every
// kept observation of its token. The worst pair of each rule is reported (the
// fastest travel, the closest concurrent use); uses far apart within the
// concurrency window are both, and raise both.
func (r *ruleCtx) pairs(dst []tokenwatch.Alert) []tokenwatch.Alert {
	e := r.e
	b := r.o
	if !e.eligible(b) {
		return dst
	}
	var (
		tr              *obs
		trDist, trSpeed float64
		trDt            int64
		cc              *obs
		ccDt            int64 = -1
		ccReason        int
	)
	for i := 0; i < int(r.s.n); i++ {
		a := &r.s.ring[i]
		if !e.eligible(a) {
			continue
		}
		dt := absMs(int64(b.dt) - int64(a.dt))
		if d, v, bad := e.travel(a, b, dt); bad && v > trSpeed {
			tr, trDist, trSpeed, trDt = a, d, v, dt
		}
		if why := e.concurrent(a, b, dt); why != reasonNone && (cc == nil || dt < ccDt) {
			cc, ccDt, ccReason = a, dt, why
		}
	}
	if tr != nil {
		if !r.suppressed(tokenwatch.AlertImpossibleTravel, dedupeKey(tokenwatch.AlertImpossibleTravel, tr, b)) {
			older, newer := r.order(tr)
			dst = r.alert(dst, tokenwatch.AlertImpossibleTravel, tr,
				summaryTravel(r.u, r.place(older), r.place(newer), trDt, trDist, trSpeed))
		}
	}
	if cc != nil {
		if !r.suppressed(tokenwatch.AlertConcurrentReplay, dedupeKey(tokenwatch.AlertConcurrentReplay, cc, b)) {
			older, newer := r.order(cc)
			why := "two countries"
			if ccReason == reasonClients {
				why = "two different clients (" + older.fam().String() + " and " + newer.fam().String() + ")"
			}
			dst = r.alert(dst, tokenwatch.AlertConcurrentReplay, cc,
				summaryConcurrent(r.u, r.place(older), r.place(newer), ccDt, why))
		}
	}
	return dst
}

// order returns (older, newer) of a kept observation and the current use.
func (r *ruleCtx) order(a *obs) (older, newer *obs) {
	if a.dt <= r.o.dt {
		return a, r.o
	}
	return r.o, a
}

// leakedReplay raises leaked_token_replay when the token was seen leaked and
// is now used, after the leak, from a network that had not used it before the
// leak (the leak sighting's own address counts as known: an application log
// usually records the request of the legitimate client). Uses from labelled
// (private, CGNAT, …) addresses name no network and are not judged.
func (r *ruleCtx) leakedReplay(dst []tokenwatch.Alert) []tokenwatch.Alert {
	if !r.e.cfg.LeakedTokenReplay.Enabled {
		return dst
	}
	leakMs, ok := r.s.leakMs()
	if !ok || !r.replayCandidate(r.o, leakMs) || r.knownBeforeLeak(r.o, leakMs) {
		return dst
	}
	if r.suppressed(tokenwatch.AlertLeakedTokenReplay, dedupeKey(tokenwatch.AlertLeakedTokenReplay, r.o, nil)) {
		return dst
	}
	var leakObs *obs
	for i := 0; i < int(r.s.n); i++ {
		if r.s.ring[i].leak() {
			leakObs = &r.s.ring[i]
			break
		}
	}
	leakDisp := dispKey{}
	if leakObs != nil {
		leakDisp = r.sh.in.dispOf(leakObs.disp)
	}
	return r.alert(dst, tokenwatch.AlertLeakedTokenReplay, leakObs,
		summaryLeakedReplay(r.u, leakDisp.service, leakMs, r.ms-leakMs, r.place(r.o)))
}

// replaysBeforeLeakSeen runs leaked_token_replay for uses already kept that
// happened after a leak sighting being observed now (the current use).
func (r *ruleCtx) replaysBeforeLeakSeen(dst []tokenwatch.Alert) []tokenwatch.Alert {
	if !r.e.cfg.LeakedTokenReplay.Enabled {
		return dst
	}
	leakMs, ok := r.s.leakMs()
	if !ok {
		return dst
	}
	for i := 0; i < int(r.s.n); i++ {
		b := &r.s.ring[i]
		if !r.replayCandidate(b, leakMs) || r.knownBeforeLeak(b, leakMs) {
			continue
		}
		if r.suppressed(tokenwatch.AlertLeakedTokenReplay, dedupeKey(tokenwatch.AlertLeakedTokenReplay, b, nil)) {
			continue
		}
		bMs := r.s.ms(b.dt)
		dst = r.alert(dst, tokenwatch.AlertLeakedTokenReplay, b,
			summaryLeakedReplay(r.u, r.u.Service, leakMs, bMs-leakMs, r.place(b)))
	}
	return dst
}

// replayCandidate: an accepted use with a public, non-ignored address, after
// the leak (+ clock skew).
func (r *ruleCtx) replayCandidate(b *obs, leakMs int64) bool {
	return !b.leak() && !b.rejected() && b.hasIP() && !b.labeled() && !r.e.ignored(b.asn) &&
		r.s.ms(b.dt) > leakMs+r.e.skewMs
}

// knownBeforeLeak reports whether b's network used the token at or before the
// leak (+ clock skew), or is the address the leak sighting recorded. An
// observation counts from the earliest use it may have merged, so a client
// that used the token before and after the leak is known even when the leak
// sighting arrives after both.
func (r *ruleCtx) knownBeforeLeak(b *obs, leakMs int64) bool {
	limit := leakMs + r.e.skewMs
	if r.s.earliestMs(b) <= limit {
		return true
	}
	for i := 0; i < int(r.s.n); i++ {
		a := &r.s.ring[i]
		if a == b || !a.hasIP() {
			continue
		}
		if !a.leak() && (r.s.earliestMs(a) > limit || a.rejected()) {
			continue
		}
		if sameClient(a, b) || (a.asn != 0 && a.asn == b.asn) {
			return true
		}
	}
	return false
}
