package policy

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Config is the `policy` section of the configuration file.
type Config struct {
	// File is the policy file; empty runs with Defaults().
	File string `yaml:"file"`
	// ReloadInterval is how often File is checked for changes; 0 disables reloading.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// MaxState bounds the remembered keys of each kind of state (once-only
	// findings, subjects, refresh tokens, endpoints); past it the oldest half is dropped.
	MaxState int `yaml:"max_state"`
	// Disabled turns posture findings off.
	Disabled bool `yaml:"disabled"`
	// StateLog keeps the state in a compacted Kafka topic so that a restart
	// or a kill -9 forgets nothing (statelog.go).
	StateLog StateLogConfig `yaml:"state_log"`
}

// DefaultConfig: built-in policy, reload every 30 s when a file is set, 200,000 keys of state.
func DefaultConfig() Config {
	return Config{ReloadInterval: 30 * time.Second, MaxState: 200_000}
}

// Validate reports every mistake in c, and in the policy file it names.
func (c Config) Validate() error {
	var errs []error
	if c.File != "" {
		if _, err := Load(c.File); err != nil {
			errs = append(errs, fmt.Errorf("policy.file: %w", err))
		}
	}
	if c.ReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("policy.reload_interval: %s is negative; use 0 to disable reloading or a duration such as 30s", c.ReloadInterval))
	}
	if c.MaxState < 1000 {
		errs = append(errs, fmt.Errorf("policy.max_state: %d is too small; use at least 1000 (default 200000)", c.MaxState))
	}
	errs = append(errs, c.StateLog.Validate())
	return errors.Join(errs...)
}

// Engine checks token uses against the policy. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	pol   atomic.Pointer[compiled]
	stamp fileStamp
	clock func() time.Time
	log   *slog.Logger

	mu        sync.Mutex
	watermark int64 // newest event time seen, unix seconds
	once      map[[16]byte]int64
	life      map[lifeKey]*lifeAgg
	lifeDay   int64 // day (unix/86400) of the watermark when summaries were last checked
	subjects  map[subjHash]*subjState
	subjSeed  [2]maphash.Seed // of subjectHash (not kept: a restore hashes the keys again)
	issClient [issClientSlots]issClientHash
	icNext    int
	refresh   map[tokenwatch.Fingerprint]*refreshState
	endpoints map[string]*endpointState
	// seen remembers which (token, service) pairs were checked, two
	// generations deep (seen.go): the per-token rules run once per pair, and
	// only workload tokens are checked on every use (their network can change).
	seen    seenSet
	seenGen uint64            // generation of seen's current keys (its old ones are seenGen-1)
	svcKey  [2]uint64         // SipHash key of service names (kept in the state log)
	svcs    [svcSlots]svcHash // the last services hashed (round robin)
	svcNext int
	// changed records what changed since the state log last wrote; nil
	// when there is no state log.
	changed *changes
	// applied is, per Kafka source partition, the newest use applied to the
	// state (with the state log only): uses at or before it are a replay.
	applied    map[partKey]*position
	lastPart   partKey
	lastPos    *position
	stop       chan struct{}
	reloadDone sync.WaitGroup
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

type lifeKey struct {
	issuer, client string
	day            int64
}

type lifeAgg struct {
	count    int
	longest  time.Duration
	first    tokenwatch.TokenUse // a copy of the first violating use (evidence)
	policy   time.Duration
	reported bool // the day summary went out
}

type subjKey struct{ issuer, client, subject string }

// subjHash names a subject in 16 bytes: two keyed hashes of its subjKey, so
// that a lookup hashes the token's sub claim alone (the issuer and client
// are few, and hashed once) and compares no strings. A collision would merge
// two subjects' escalation state; at 2^-128 per pair, under random keys an
// attacker does not know, it does not happen.
type subjHash [2]uint64

// issClientSlots (issuer, client) pairs are remembered with their hash.
const issClientSlots = 4

type issClientHash struct {
	issuer, client string
	h              [2]uint64
	valid          bool
}

type subjState struct {
	key    subjKey
	fp     tokenwatch.Fingerprint
	scopes []string // sorted
	t      int64
	// use is the newest token's use, for the alert when a late older token
	// shows the escalation. Its JWT claims are shared with the finding
	// (never modified after decoding); Sealed is dropped.
	use tokenwatch.TokenUse
}

type netKey struct {
	asn    uint32
	prefix netip.Prefix
}

type refreshState struct {
	nets  [4]netKey
	times [4]int64
	n     int
}

// maxAlertedTimes bounds the dispensary alert times kept per endpoint.
const maxAlertedTimes = 8

// dispensaryLateness is how far behind an endpoint's newest leak a leak may
// be read and still be counted with its neighbours (topics and partitions are
// read at their own pace; a backfill reads one far ahead of another).
const dispensaryLateness = 6 * time.Hour

type endpointState struct {
	uses    []tokenwatch.TokenUse // leaks within the window, oldest first (copies)
	alerted []int64               // event times of the dispensary alerts raised (newest maxAlertedTimes)
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock sets the clock for detected_at (tests).
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.clock = now } }

// WithLogger sets the logger for reload messages.
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// New loads the policy (cfg.File, or Defaults) and starts the reload loop.
// Close stops it.
func New(cfg Config, opts ...Option) (*Engine, error) {
	if cfg.MaxState == 0 {
		cfg.MaxState = DefaultConfig().MaxState
	}
	e := &Engine{
		cfg: cfg, clock: time.Now, log: slog.Default(),
		once: map[[16]byte]int64{}, life: map[lifeKey]*lifeAgg{}, subjects: map[subjHash]*subjState{},
		subjSeed: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		refresh:  map[tokenwatch.Fingerprint]*refreshState{}, endpoints: map[string]*endpointState{},
		seen: newSeenSet(min(cfg.MaxState/2, seenHint)), stop: make(chan struct{}),
	}
	var k [16]byte
	_, _ = rand.Read(k[:]) // never fails (crypto/rand)
	e.svcKey = [2]uint64{binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:])}
	e.resetServices()
	for _, o := range opts {
		o(e)
	}
	f := Defaults()
	if cfg.File != "" {
		var err error
		if f, err = Load(cfg.File); err != nil {
			return nil, err
		}
		e.stamp, _ = stampOf(cfg.File)
	}
	e.pol.Store(compile(f))
	if cfg.File != "" && cfg.ReloadInterval > 0 {
		e.reloadDone.Add(1)
		go e.reloadLoop()
	}
	return e, nil
}

func stampOf(p string) (fileStamp, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.Size(), fi.ModTime()}, nil
}

// Close stops the reload loop.
func (e *Engine) Close() error {
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	e.reloadDone.Wait()
	return nil
}

func (e *Engine) reloadLoop() {
	defer e.reloadDone.Done()
	t := time.NewTicker(e.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.Reload()
		}
	}
}

// Reload re-reads the policy file if it changed. A file that no longer parses
// or validates is reported and the loaded policy stays in force.
func (e *Engine) Reload() {
	if e.cfg.File == "" {
		return
	}
	st, err := stampOf(e.cfg.File)
	if err != nil || st == e.stamp {
		return
	}
	f, err := Load(e.cfg.File)
	if err != nil {
		metricReloads.WithLabelValues("error").Inc()
		e.log.Error("policy reload failed; keeping the loaded policy", "file", e.cfg.File, "err", err)
		e.stamp = st // report a broken file once, not every interval
		return
	}
	e.stamp = st
	e.pol.Store(compile(f))
	// Tokens checked under the old policy are checked again under the new one.
	e.mu.Lock()
	if e.changed != nil {
		e.seen.all(func(k seenKey, _ uint8) { e.changed.markSeen(k) })
	}
	e.seen.reset()
	e.mu.Unlock()
	metricReloads.WithLabelValues("ok").Inc()
	e.log.Info("policy reloaded", "file", e.cfg.File)
}

// Process implements tokenwatch.Stage: it checks every use of b and appends
// findings to b.Alerts, holding the state lock once for the whole batch.
func (e *Engine) Process(ctx context.Context, b *tokenwatch.Batch) error {
	if e.cfg.Disabled {
		return nil
	}
	p := e.pol.Load()
	e.mu.Lock()
	for i := range b.Uses {
		b.Alerts = e.check(p, &b.Uses[i], b.Alerts)
	}
	e.mu.Unlock()
	return ctx.Err()
}

// Check checks one use and appends any findings to dst.
func (e *Engine) Check(u *tokenwatch.TokenUse, dst []tokenwatch.Alert) []tokenwatch.Alert {
	p := e.pol.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.check(p, u, dst)
}

// seenHint sizes the seen set up front (4096 pairs: 8192 slots, 136 kB), so
// a starting engine does not rehash it at every doubling.
const seenHint = 1 << 12

func (e *Engine) check(p *compiled, u *tokenwatch.TokenUse, dst []tokenwatch.Alert) []tokenwatch.Alert {
	if e.changed != nil && u.Origin.IsKafka() && e.replayed(u) {
		return dst // in the restored state already; its findings are durable
	}
	ts := u.Time.Unix()
	if ts > e.watermark {
		e.watermark = ts
		e.changed.markMeta()
		if day := ts / 86400; day != e.lifeDay {
			dst = e.closeDays(p, day, dst)
			e.lifeDay = day
		}
	}
	if isRefresh(u) {
		dst = e.checkRefresh(p, u, dst)
	}
	if u.Leak {
		dst = e.checkDispensary(p, u, dst)
	}
	j := u.JWT
	if j == nil {
		return dst
	}
	k := keyOf(u, e.serviceHash(u.Service))
	if f := e.seen.lookup(k); f != 0 {
		if f&seenCurrent == 0 { // from the old generation: keep it
			e.remember(k, f&seenWorkload != 0)
		}
		if f&seenWorkload != 0 && !u.Leak {
			dst = e.checkWorkload(p, p.client(j.Iss, j.ClientID), u, dst)
		}
		return dst
	}
	cp := p.client(j.Iss, j.ClientID)
	e.remember(k, cp.Workload)
	return e.checkToken(p, cp, u, dst)
}

// seenKey names a (token, service, leak or use) triple in 16 bytes: the
// fingerprint with the service's keyed hash and the leak bit folded in. A
// collision would only skip the per-token rules for one pair; at 2^-64 per
// pair it does not happen, and without the key it cannot be made to.
type seenKey [2]uint64

// svcSlots services are remembered with their hash: a log stream names few
// services, interleaved, so most uses find theirs without hashing.
const svcSlots = 4

type svcHash struct {
	name string
	hash uint64
}

func (e *Engine) serviceHash(name string) uint64 {
	for i := range e.svcs {
		if e.svcs[i].name == name {
			return e.svcs[i].hash
		}
	}
	h := sipHash(e.svcKey, name)
	e.svcs[e.svcNext] = svcHash{name, h}
	e.svcNext = (e.svcNext + 1) % svcSlots
	return h
}

// resetServices forgets the hashed services (the hash key changed).
func (e *Engine) resetServices() {
	h := sipHash(e.svcKey, "")
	for i := range e.svcs {
		e.svcs[i] = svcHash{"", h}
	}
}

// keyOf builds the key of u, whose service hashes to svcHash.
func keyOf(u *tokenwatch.TokenUse, svcHash uint64) seenKey {
	k := seenKey{binary.LittleEndian.Uint64(u.Fingerprint[:8]), binary.LittleEndian.Uint64(u.Fingerprint[8:])}
	k[0] ^= svcHash
	if u.Leak {
		k[1] ^= 1
	}
	return k
}

// remember puts k in the current generation of seen, rotating the
// generations when the current one is full.
func (e *Engine) remember(k seenKey, workload bool) {
	if e.seen.cur >= e.cfg.MaxState/2 {
		e.seen.rotate(e.changed.markSeen) // the old generation's keys: tombstones
		e.seenGen++
		e.changed.markMeta()
	}
	e.seen.put(k, workload)
	e.changed.markSeen(k)
}

// checkToken runs the rules that depend on the token and the service it was
// presented to, not on the individual request.
func (e *Engine) checkToken(p *compiled, cp *clientPolicy, u *tokenwatch.TokenUse, dst []tokenwatch.Alert) []tokenwatch.Alert {
	j := u.JWT
	idToken := isIDToken(j)
	if !idToken && !isRefresh(u) {
		dst = e.checkLifetime(p, cp, u, dst)
	}
	dst = e.checkScopes(p, cp, u, dst)
	if u.Leak {
		return dst
	}
	// Presented as a credential: in an Authorization header, or as the
	// access_token parameter of RFC 6750 section 2.3.
	presented := u.Scheme != "" || u.Param == "access_token"
	if idToken && presented {
		dst = e.onceAlert(p, dst, u, TypeIDTokenAsAccess, []string{u.Fingerprint.String()}, 7*24*time.Hour,
			func() string {
				return fmt.Sprintf("An OIDC ID token%s was sent as a %s credential to %s; ID tokens prove a login to the client and must not be used to call APIs.", who(j), u.Scheme, serviceName(u))
			})
	}
	if j.CnfJKT != "" && (strings.EqualFold(u.Scheme, "Bearer") || u.HeadersLogged && !u.DPoPProof) {
		how := "with the Bearer scheme"
		if !strings.EqualFold(u.Scheme, "Bearer") {
			how = "without a DPoP proof header"
		}
		dst = e.onceAlert(p, dst, u, TypeBoundAsBearer, []string{u.Fingerprint.String()}, 7*24*time.Hour,
			func() string {
				return fmt.Sprintf("A DPoP-bound token%s was presented to %s %s, so its sender constraint was not enforced.", who(j), serviceName(u), how)
			})
	}
	if cp.SenderConstrained && j.CnfJKT == "" && j.CnfX5T == "" && presented {
		dst = e.onceAlert(p, dst, u, TypeSenderConstraint, []string{u.Fingerprint.String()}, 7*24*time.Hour,
			func() string {
				return fmt.Sprintf("Client %s must use sender-constrained tokens, but a token%s without a cnf claim was presented to %s.", orUnknown(j.ClientID), who(j), serviceName(u))
			})
	}
	if sr := p.service(u.Service); sr != nil && presented && !idToken && len(j.Aud) > 0 && !audienceAllowed(sr, j.Aud) {
		dst = e.onceAlert(p, dst, u, TypeAudienceMismatch, []string{u.Fingerprint.String(), u.Service}, 7*24*time.Hour,
			func() string {
				return fmt.Sprintf("A token for audience %s%s was presented to %s, which accepts only %s.", strings.Join(j.Aud, ", "), who(j), u.Service, strings.Join(sr.Audiences, ", "))
			})
	}
	if cp.Workload {
		dst = e.checkWorkload(p, cp, u, dst)
	}
	return e.checkEscalation(p, u, dst)
}

func (e *Engine) checkWorkload(p *compiled, cp *clientPolicy, u *tokenwatch.TokenUse, dst []tokenwatch.Alert) []tokenwatch.Alert {
	if !cp.Workload || !u.IP.IsValid() || cp.onNetwork(u.IP, u.Geo.ASN) {
		return dst
	}
	return e.onceAlert(p, dst, u, TypeWorkloadOffNetwork, []string{u.Fingerprint.String(), netOf(u).String()}, 7*24*time.Hour,
		func() string {
			return fmt.Sprintf("A token of workload client %s was used from %s, outside its allowed networks.", orUnknown(u.JWT.ClientID), placeOf(u))
		})
}

func isIDToken(j *tokenwatch.JWTInfo) bool {
	// The lengths first: EqualFold reads the claim's bytes before comparing them.
	marked := j.HasNonce || j.HasAtHash || len(j.Typ) == len("id_token") && strings.EqualFold(j.Typ, "id_token") ||
		len(j.Typ) == len("id+jwt") && strings.EqualFold(j.Typ, "id+jwt")
	if !marked {
		return false
	}
	// An ID token's audience is the client it was issued to.
	return j.ClientID == "" || len(j.Aud) == 0 || slices.Contains(j.Aud, j.ClientID)
}

func isRefresh(u *tokenwatch.TokenUse) bool {
	return u.Kind == "oauth_refresh_token" || u.Kind == "github_refresh_token" ||
		u.Param != "" && strings.Contains(strings.ToLower(u.Param), "refresh")
}

func audienceAllowed(sr *serviceRule, aud []string) bool {
	for _, a := range aud {
		for _, g := range sr.audiences {
			if g.match(a) {
				return true
			}
		}
	}
	return false
}

func (e *Engine) checkLifetime(p *compiled, cp *clientPolicy, u *tokenwatch.TokenUse, dst []tokenwatch.Alert) []tokenwatch.Alert {
	j := u.JWT
	max := cp.MaxLifetime
	if max <= 0 || j.Iat == 0 || j.Exp <= j.Iat {
		return dst
	}
	life := time.Duration(j.Exp-j.Iat) * time.Second
	if life <= max {
		return dst
	}
	k := lifeKey{j.Iss, j.ClientID, u.Time.Unix() / 86400}
	a, ok := e.life[k]
	if !ok {
		a = &lifeAgg{first: copyUse(u), policy: max}
		e.life[k] = a
		e.bound(len(e.life), func() { dropHalf(e.life, e.changed.markLife) })
	}
	e.changed.markLife(k)
	a.count++
	if life > a.longest {
		a.longest = life
	}
	if ok {
		return dst
	}
	// The first violation of the day goes out at once; the day's count follows
	// as an update of the same alert when the day closes (closeDays / Flush).
	metricFindings.WithLabelValues(TypeLifetime).Inc()
	return append(dst, e.lifetimeAlert(p, k, a, 0))
}

func (e *Engine) lifetimeAlert(p *compiled, k lifeKey, a *lifeAgg, update int) tokenwatch.Alert {
	day := time.Unix(k.day*86400, 0).UTC().Format("2006-01-02")
	summary := fmt.Sprintf("Client %s of %s was issued an access token living %s, above the %s policy (first seen %s).",
		orUnknown(k.client), orUnknown(k.issuer), a.longest, a.policy, day)
	if update > 0 {
		summary = fmt.Sprintf("Client %s of %s: %d access tokens living longer than the %s policy seen on %s, the longest %s.",
			orUnknown(k.client), orUnknown(k.issuer), a.count, a.policy, day, a.longest)
	}
	al := e.newAlert(p, &a.first, TypeLifetime, summary, "lifetime", k.issuer, k.client, day)
	al.Update = update
	return al
}

// closeDays emits the day summaries of every day before today.
func (e *Engine) closeDays(p *compiled, today int64, dst []tokenwatch.Alert) []tokenwatch.Alert {
	keys := make([]lifeKey, 0, len(e.life))
	for k := range e.life {
		if k.day < today {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].day < keys[j].day || keys[i].day == keys[j].day && keys[i].issuer+keys[i].client < keys[j].issuer+keys[j].client
	})
	for _, k := range keys {
		a := e.life[k]
		if !a.reported {
			dst = append(dst, e.lifetimeAlert(p, k, a, 1))
		}
		delete(e.life, k)
		e.changed.markLife(k)
	}
	return dst
}

// Flush emits the summaries of the days still open (at the end of a bounded
// input such as a backfill or the demo). Live pipelines get them when event
// time passes midnight.
func (e *Engine) Flush(dst []tokenwatch.Alert) []tokenwatch.Alert {
	p := e.pol.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	keys := make([]lifeKey, 0, len(e.life))
	for k, a := range e.life {
		if !a.reported {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].day < keys[j].day || keys[i].day == keys[j].day && keys[i].issuer+keys[i].client < keys[j].issuer+keys[j].client
	})
	for _, k := range keys {
		a := e.life[k]
		a.reported = true
		e.changed.markLife(k)
		dst = append(dst, e.lifetimeAlert(p, k, a, 1))
	}
	return dst
}

func (e *Engine) checkScopes(p *compiled, cp *clientPolicy, u *tokenwatch.TokenUse, dst []tokenwatch.Alert) []tokenwatch.Alert {
	j := u.JWT
	var bad []string
	for _, s := range j.Scope {
		if !cp.scopeAllowed(s) {
			bad = append(bad, s)
		}
	}
	if len(bad) == 0 {
		return dst
	}
	day := time.Unix(u.Time.Unix()/86400*86400, 0).UTC().Format("2006-01-02")
	return e.onceAlert(p, dst, u, TypeScope, append([]string{j.Iss, j.ClientID, day}, bad...), 48*time.Hour,
		func() string {
			return fmt.Sprintf("Client %s holds scope %s outside its allowed set %s.", orUnknown(j.ClientID), strings.Join(bad, ", "), strings.Join(cp.AllowedScopes, ", "))
		})
}

// checkEscalation compares a subject's token with the newest other token of
// the same client seen before it. Uses can arrive out of event-time order
// (several sources read at their own pace): when an older token arrives after
// a newer one, the newer one is the escalation and is reported.
func (e *Engine) checkEscalation(p *compiled, u *tokenwatch.TokenUse, dst []tokenwatch.Alert) []tokenwatch.Alert {
	j := u.JWT
	if j.Sub == "" || len(j.Scope) == 0 {
		return dst
	}
	h := e.subjectHash(j.Iss, j.ClientID, j.Sub)
	prev := e.subjects[h]
	if prev != nil && prev.fp == u.Fingerprint {
		return dst // same token again: nothing new
	}
	k := subjKey{j.Iss, j.ClientID, j.Sub}
	now := u.Time.Unix()
	if prev == nil {
		st := &subjState{key: k, fp: u.Fingerprint, scopes: sortedCopy(j.Scope), t: now, use: *u}
		st.use.Sealed = nil
		e.subjects[h] = st
		e.changed.markSubject(k)
		e.bound(len(e.subjects), e.dropHalfSubjects)
		return dst
	}
	// Most new tokens of a subject carry the scopes of the previous one.
	same := sameSorted(prev.scopes, j.Scope)
	if !same && abs(now-prev.t) <= int64(p.file.Windows.ScopeEscalation/time.Second) {
		cur := sortedCopy(j.Scope)
		older, newer, newerUse := prev.scopes, cur, u
		if now < prev.t {
			c := prev.use
			older, newer, newerUse = cur, prev.scopes, &c
		}
		if added := missing(newer, older); len(added) > 0 {
			dst = e.onceAlert(p, dst, newerUse, TypeScopeEscalation, []string{newerUse.Fingerprint.String()}, 7*24*time.Hour,
				func() string {
					return fmt.Sprintf("Subject %s of client %s got a token with more scopes than its previous one %s earlier: added %s.",
						j.Sub, orUnknown(j.ClientID), time.Duration(abs(now-prev.t))*time.Second, strings.Join(added, ", "))
				})
		}
	}
	if now >= prev.t {
		if !same {
			prev.scopes = sortedCopy(j.Scope)
		}
		prev.key, prev.fp, prev.t, prev.use = k, u.Fingerprint, now, *u
		prev.use.Sealed = nil
		e.changed.markSubject(k)
	}
	return dst
}

// subjectHash returns the subjHash of (issuer, client, subject).
func (e *Engine) subjectHash(issuer, client, subject string) subjHash {
	var ic [2]uint64
	found := false
	for i := range e.issClient {
		if c := &e.issClient[i]; c.valid && c.client == client && c.issuer == issuer {
			ic, found = c.h, true
			break
		}
	}
	if !found {
		k := [2]string{issuer, client}
		ic = [2]uint64{maphash.Comparable(e.subjSeed[0], k), maphash.Comparable(e.subjSeed[1], k)}
		e.issClient[e.icNext] = issClientHash{issuer, client, ic, true}
		e.icNext = (e.icNext + 1) % issClientSlots
	}
	// The subject is hashed under the other seed of each pair, so that no
	// (issuer, client) hash can cancel a subject's.
	return subjHash{ic[0] ^ maphash.String(e.subjSeed[1], subject), ic[1] ^ maphash.String(e.subjSeed[0], subject)}
}

// dropHalfSubjects deletes about half of the subjects.
func (e *Engine) dropHalfSubjects() {
	n := len(e.subjects) / 2
	for h, st := range e.subjects {
		if n == 0 {
			return
		}
		delete(e.subjects, h)
		e.changed.markSubject(st.key)
		n--
	}
}

// sameSorted reports whether scopes (in any order, no duplicates expected)
// equal the sorted set s, without allocating when scopes is already sorted.
func sameSorted(s, scopes []string) bool {
	if len(s) != len(scopes) {
		return false
	}
	for i := range scopes {
		if scopes[i] != s[i] {
			if sort.StringsAreSorted(scopes) {
				return false
			}
			return slices.Equal(s, sortedCopy(scopes))
		}
	}
	return true
}

func (e *Engine) checkRefresh(p *compiled, u *tokenwatch.TokenUse, dst []tokenwatch.Alert) []tokenwatch.Alert {
	dst = e.onceAlert(p, dst, u, TypeRefreshInLog, []string{u.Fingerprint.String()}, 30*24*time.Hour,
		func() string {
			return fmt.Sprintf("A refresh token was written to the log of %s; refresh tokens are long-lived and must never be logged.", serviceName(u))
		})
	if u.Leak || !u.IP.IsValid() {
		return dst
	}
	st := e.refresh[u.Fingerprint]
	if st == nil {
		st = &refreshState{}
		e.refresh[u.Fingerprint] = st
		e.bound(len(e.refresh), func() { dropHalf(e.refresh, e.changed.markRefresh) })
	}
	nk, now := netOf(u), u.Time.Unix()
	window := int64(p.file.Windows.RefreshReuse / time.Second)
	other := -1
	for i := 0; i < st.n; i++ {
		if st.nets[i] != nk && abs(now-st.times[i]) <= window {
			other = i
		}
	}
	if other >= 0 {
		dst = e.onceAlert(p, dst, u, TypeRefreshReuse, []string{u.Fingerprint.String()}, 30*24*time.Hour,
			func() string {
				return fmt.Sprintf("One refresh token was used from two networks (%s and %s) %s apart; a refresh token belongs to one client.",
					st.nets[other], nk, time.Duration(abs(now-st.times[other]))*time.Second)
			})
	}
	for i := 0; i < st.n; i++ {
		if st.nets[i] == nk {
			if now > st.times[i] {
				st.times[i] = now
				e.changed.markRefresh(u.Fingerprint)
			}
			return dst
		}
	}
	i := st.n
	if i == len(st.nets) {
		i = 0 // replace the oldest slot
		for k := 1; k < len(st.nets); k++ {
			if st.times[k] < st.times[i] {
				i = k
			}
		}
	} else {
		st.n++
	}
	st.nets[i], st.times[i] = nk, now
	e.changed.markRefresh(u.Fingerprint)
	return dst
}

func (e *Engine) checkDispensary(p *compiled, u *tokenwatch.TokenUse, dst []tokenwatch.Alert) []tokenwatch.Alert {
	ep := serviceName(u)
	if u.Path != "" {
		ep += " " + u.Path
	}
	st := e.endpoints[ep]
	if st == nil {
		st = &endpointState{}
		e.endpoints[ep] = st
		e.bound(len(e.endpoints), func() { dropHalf(e.endpoints, e.changed.markEndpoint) })
	}
	e.changed.markEndpoint(ep)
	now := u.Time.Unix()
	window := int64(p.file.Windows.Dispensary / time.Second)
	// Leaks arrive out of event-time order (several topics and partitions):
	// the window is taken on both sides of this leak's time, and so is the
	// quiet period after an alert, so the same leaks raise the same number
	// of alerts whatever order they are read in.
	// Uses are kept while they are within dispensaryLateness of the newest;
	// beyond 4 x dispensary_min_subjects, the ones farthest in time from
	// this leak go first (the neighbourhood of the leak is what counts).
	newest := now
	for i := range st.uses {
		newest = max(newest, st.uses[i].Time.Unix())
	}
	horizon := newest - int64(dispensaryLateness/time.Second)
	keep := st.uses[:0]
	for _, o := range st.uses {
		if o.Time.Unix() >= horizon {
			keep = append(keep, o)
		}
	}
	clear(st.uses[len(keep):])
	st.uses = append(keep, copyUse(u))
	if limit := 4 * p.file.DispensaryMinSubjects; len(st.uses) > limit {
		if len(st.uses) == limit+1 {
			// One use too many (the usual case): drop the farthest, the
			// last of equal ones, as the stable sort below would.
			far, d := 0, int64(-1)
			for i := range st.uses {
				if di := abs(now - st.uses[i].Time.Unix()); di >= d {
					far, d = i, di
				}
			}
			st.uses = slices.Delete(st.uses, far, far+1)
		} else { // the policy lowered dispensary_min_subjects
			slices.SortStableFunc(st.uses, func(a, b tokenwatch.TokenUse) int {
				return cmp.Compare(abs(now-a.Time.Unix()), abs(now-b.Time.Unix()))
			})
			clear(st.uses[limit:])
			st.uses = st.uses[:limit]
		}
		// Uses of equal times are at equal distances, so they keep their
		// relative order either way.
		slices.SortStableFunc(st.uses, func(a, b tokenwatch.TokenUse) int { return a.Time.Compare(b.Time) })
	}
	subjects := 0
	for i := range st.uses {
		if abs(now-st.uses[i].Time.Unix()) > window {
			continue
		}
		dup := false
		for j := range i {
			if abs(now-st.uses[j].Time.Unix()) <= window && sameSubject(&st.uses[i], &st.uses[j]) {
				dup = true
				break
			}
		}
		if !dup {
			subjects++
		}
	}
	if subjects < p.file.DispensaryMinSubjects {
		return dst
	}
	for _, t := range st.alerted {
		if abs(now-t) < window {
			return dst
		}
	}
	st.alerted = append(st.alerted, now)
	if len(st.alerted) > maxAlertedTimes {
		st.alerted = slices.Delete(st.alerted, 0, len(st.alerted)-maxAlertedTimes)
	}
	var examples []string
	for i := len(st.uses) - 1; i >= 0 && len(examples) < 3; i-- {
		examples = append(examples, st.uses[i].Redacted)
	}
	bucket := time.Unix(now/window*window, 0).UTC().Format(time.RFC3339)
	a := e.newAlert(p, u, TypeDispensary,
		fmt.Sprintf("%s leaked tokens of %d distinct subjects within %s (e.g. %s).", ep, subjects, p.file.Windows.Dispensary, strings.Join(examples, ", ")),
		ep, bucket)
	a.Evidence = a.Evidence[:0]
	for i := range st.uses {
		a.Evidence = append(a.Evidence, tokenwatch.EvidenceOf(&st.uses[i]))
	}
	metricFindings.WithLabelValues(TypeDispensary).Inc()
	return append(dst, a)
}

// onceAlert raises typ for key once per ttl of event time.
// The summary is built only when the finding is raised.
func (e *Engine) onceAlert(p *compiled, dst []tokenwatch.Alert, u *tokenwatch.TokenUse, typ string, key []string, ttl time.Duration, summary func() string) []tokenwatch.Alert {
	h := hashKey(typ, key)
	now := u.Time.Unix()
	if exp, ok := e.once[h]; ok && now < exp {
		return dst
	}
	e.once[h] = now + int64(ttl/time.Second)
	e.changed.markOnce(h)
	e.bound(len(e.once), e.sweepOnce)
	metricFindings.WithLabelValues(typ).Inc()
	return append(dst, e.newAlert(p, u, typ, summary(), key...))
}

func (e *Engine) newAlert(p *compiled, u *tokenwatch.TokenUse, typ, summary string, key ...string) tokenwatch.Alert {
	a := tokenwatch.Alert{
		Type:        typ,
		Severity:    p.severity(typ),
		Fingerprint: u.Fingerprint.String(),
		Kind:        u.Kind,
		Redacted:    u.Redacted,
		Service:     u.Service,
		EventTime:   u.Time.UTC(),
		DetectedAt:  e.clock().UTC(),
		Evidence:    []tokenwatch.Evidence{tokenwatch.EvidenceOf(u)},
		Summary:     summary,
	}
	id := hashKey(typ, key)
	a.ID = hex.EncodeToString(id[:])
	if j := u.JWT; j != nil {
		a.JTI, a.Issuer, a.Subject, a.ClientID = j.Jti, j.Iss, j.Sub, j.ClientID
	}
	return a
}

// sweepOnce drops expired once-keys; if that is not enough, half of them.
func (e *Engine) sweepOnce() {
	for k, exp := range e.once {
		if exp <= e.watermark {
			delete(e.once, k)
			e.changed.markOnce(k)
		}
	}
	if len(e.once) > e.cfg.MaxState {
		dropHalf(e.once, e.changed.markOnce)
	}
}

// bound calls shrink when n passed the state cap, counting the eviction.
func (e *Engine) bound(n int, shrink func()) {
	if n > e.cfg.MaxState {
		metricEvictions.Inc()
		shrink()
	}
}

// dropHalf deletes about half of m, calling gone with each key it deletes.
func dropHalf[K comparable, V any](m map[K]V, gone func(K)) {
	n := len(m) / 2
	for k := range m {
		if n == 0 {
			return
		}
		delete(m, k)
		gone(k)
		n--
	}
}

func hashKey(typ string, key []string) [16]byte {
	h := sha256.New()
	h.Write([]byte(typ))
	for _, k := range key {
		h.Write([]byte{0})
		h.Write([]byte(k))
	}
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// copyUse copies the parts of u that evidence needs (no slices shared with the batch).
func copyUse(u *tokenwatch.TokenUse) tokenwatch.TokenUse {
	c := *u
	c.Sealed = nil
	if u.JWT != nil {
		j := *u.JWT
		c.JWT = &j
	}
	return c
}

// sameSubject reports whether a and b are uses of tokens of one subject: the
// same issuer and sub claim, or, for tokens without a subject, one token.
func sameSubject(a, b *tokenwatch.TokenUse) bool {
	as, bs := a.JWT != nil && a.JWT.Sub != "", b.JWT != nil && b.JWT.Sub != ""
	if as != bs {
		return false
	}
	if as {
		return a.JWT.Sub == b.JWT.Sub && a.JWT.Iss == b.JWT.Iss
	}
	return a.Fingerprint == b.Fingerprint
}

// netOf is the network a use came from: its ASN when known, else its /24 (IPv4) or /48 (IPv6).
func netOf(u *tokenwatch.TokenUse) netKey {
	if u.Geo.ASN != 0 {
		return netKey{asn: u.Geo.ASN}
	}
	ip := u.IP.Unmap()
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	pr, _ := ip.Prefix(bits)
	return netKey{prefix: pr}
}

func (n netKey) String() string {
	if n.asn != 0 {
		return fmt.Sprintf("AS%d", n.asn)
	}
	return n.prefix.String()
}

func placeOf(u *tokenwatch.TokenUse) string {
	s := u.IP.String()
	if u.Geo.ASN != 0 {
		s += fmt.Sprintf(" (AS%d %s", u.Geo.ASN, u.Geo.ASOrg)
		if u.Geo.Country != "" {
			s += ", " + u.Geo.Country
		}
		s += ")"
	}
	return s
}

func who(j *tokenwatch.JWTInfo) string {
	var parts []string
	if j.Sub != "" {
		parts = append(parts, "sub "+j.Sub)
	}
	if j.ClientID != "" {
		parts = append(parts, "client "+j.ClientID)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func serviceName(u *tokenwatch.TokenUse) string {
	switch {
	case u.Service != "":
		return u.Service
	case u.Host != "":
		return u.Host
	case u.Origin.Source != "":
		return u.Origin.Source
	}
	return "an unnamed service"
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return slices.Compact(c)
}

// missing returns the elements of cur (sorted) absent from prev (sorted).
func missing(cur, prev []string) []string {
	var out []string
	for _, s := range cur {
		if _, found := slices.BinarySearch(prev, s); !found {
			out = append(out, s)
		}
	}
	return out
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
