package alerts

import (
	"container/list"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Emitted is an alert the policy lets out, with what the outbox needs besides
// the alert JSON.
type Emitted struct {
	Alert tokenwatch.Alert
	// TokenExp is the token's expiry when known (JWT exp); revocation is not
	// attempted after it.
	TokenExp time.Time
}

// Policy applies severity overrides, the minimum severity and the dedupe
// window. It is safe for concurrent use.
//
// The first alert of a (type, fingerprint) goes out at once. Further alerts of
// the same key seen within DedupeWindow of the previous one are merged into the
// first: their evidence is appended (the last MaxEvidence uses are kept) and an
// update carrying the first alert's ID and the next Update number is emitted at
// most every UpdateInterval, by Admit when the interval has passed or by Due
// afterwards. A replay storm of thousands of alerts is one alert plus a few
// updates.
type Policy struct {
	cfg PolicyConfig

	mu   sync.Mutex
	keys map[policyKey]*list.Element // of *policyEntry
	lru  list.List                   // front = least recently seen
}

type policyKey struct {
	typ string
	fp  string
}

type policyEntry struct {
	key      policyKey
	alert    tokenwatch.Alert // the first alert, evidence replaced by the merged list
	exp      time.Time
	firstAt  time.Time
	lastSeen time.Time
	lastEmit time.Time
	merged   int  // alerts merged since the first
	pending  bool // merged evidence not yet emitted
	latest   tokenwatch.Alert
}

// NewPolicy returns a Policy for cfg (validated by Config.Validate).
func NewPolicy(cfg PolicyConfig) *Policy {
	if cfg.MaxEvidence < 1 || cfg.MaxKeys < 1 {
		panic("BUG: alerts.NewPolicy with an unvalidated config")
	}
	return &Policy{cfg: cfg, keys: make(map[policyKey]*list.Element)}
}

// Admit passes one alert through the policy at time now and appends what goes
// out to dst. a.Evidence is copied, not retained.
func (p *Policy) Admit(dst []Emitted, a tokenwatch.Alert, exp time.Time, now time.Time) []Emitted {
	if sev, ok := p.cfg.Severity[a.Type]; ok {
		a.Severity = sev
	}
	if severityRank[a.Severity] < severityRank[p.cfg.MinSeverity] {
		policyDropped.Inc()
		return dst
	}
	if p.cfg.DedupeWindow <= 0 {
		a.Evidence = p.boundEvidence(nil, a.Evidence)
		return append(dst, Emitted{Alert: a, TokenExp: exp})
	}
	k := policyKey{a.Type, a.Fingerprint}
	p.mu.Lock()
	defer p.mu.Unlock()
	if el, ok := p.keys[k]; ok {
		e := el.Value.(*policyEntry)
		if now.Sub(e.lastSeen) <= p.cfg.DedupeWindow {
			p.lru.MoveToBack(el)
			e.lastSeen = now
			e.merged++
			e.pending = true
			if severityRank[a.Severity] > severityRank[e.alert.Severity] {
				e.alert.Severity = a.Severity
			}
			if e.exp.IsZero() {
				e.exp = exp
			}
			if len(e.alert.Sealed) == 0 && len(a.Sealed) > 0 {
				e.alert.Sealed = a.Sealed
			}
			e.alert.Evidence = p.boundEvidence(e.alert.Evidence, a.Evidence)
			e.latest = a
			e.latest.Evidence = nil
			policySuppressed.Inc()
			if now.Sub(e.lastEmit) >= p.cfg.UpdateInterval {
				dst = append(dst, p.update(e, now))
			}
			return dst
		}
		// The window passed: forget the old entry (flushing it) and start anew.
		if e.pending {
			dst = append(dst, p.update(e, now))
		}
		p.lru.Remove(el)
		delete(p.keys, k)
	}
	for len(p.keys) >= p.cfg.MaxKeys {
		front := p.lru.Front()
		old := front.Value.(*policyEntry)
		if old.pending {
			dst = append(dst, p.update(old, now))
		}
		p.lru.Remove(front)
		delete(p.keys, old.key)
	}
	a.Evidence = p.boundEvidence(nil, a.Evidence)
	a.Update = 0
	e := &policyEntry{key: k, alert: a, exp: exp, firstAt: now, lastSeen: now, lastEmit: now}
	e.alert.Evidence = slices.Clone(a.Evidence)
	p.keys[k] = p.lru.PushBack(e)
	return append(dst, Emitted{Alert: a, TokenExp: exp})
}

// Seed restores the state of one (type, fingerprint) key from an alert or
// update the policy emitted at emittedAt, read back from the outbox after a
// restart. A later Admit of the same key within DedupeWindow of emittedAt is
// merged into a.ID as update a.Update+1, exactly as if the process had not
// restarted; after the window it is a new alert. a.Evidence (the merged
// evidence of that emission) is copied, bounded to MaxEvidence.
//
// Call Seed before the first Admit. Of several emissions of one key the one
// with the latest emittedAt wins (equal times: the higher update). Calls in
// emittedAt order cost O(1); MaxKeys bounds the keys as in Admit, the least
// recently seen going first. Seed emits nothing and reports whether it kept a.
func (p *Policy) Seed(a tokenwatch.Alert, exp, emittedAt time.Time) bool {
	if p.cfg.DedupeWindow <= 0 || a.Update < 0 {
		return false
	}
	k := policyKey{a.Type, a.Fingerprint}
	p.mu.Lock()
	defer p.mu.Unlock()
	if el, ok := p.keys[k]; ok {
		e := el.Value.(*policyEntry)
		if e.pending || emittedAt.Before(e.lastSeen) ||
			(emittedAt.Equal(e.lastSeen) && a.ID == e.alert.ID && a.Update <= e.alert.Update) {
			return false
		}
		p.lru.Remove(el)
		delete(p.keys, k)
	}
	for len(p.keys) >= p.cfg.MaxKeys {
		front := p.lru.Front()
		old := front.Value.(*policyEntry)
		if old.pending || old.lastSeen.After(emittedAt) {
			return false // a would be the first to go
		}
		p.lru.Remove(front)
		delete(p.keys, old.key)
	}
	base, merged, since, ok := parseUpdateSummary(a.Summary, a.Update)
	if !ok {
		base, merged, since = a.Summary, a.Update, emittedAt
	}
	a.Summary = base
	a.Evidence = p.boundEvidence(nil, a.Evidence)
	e := &policyEntry{key: k, alert: a, exp: exp, firstAt: since, lastSeen: emittedAt, lastEmit: emittedAt, merged: merged}
	e.latest = a
	e.latest.Evidence = nil
	at := p.lru.Back()
	for at != nil && at.Value.(*policyEntry).lastSeen.After(emittedAt) {
		at = at.Prev()
	}
	if at == nil {
		p.keys[k] = p.lru.PushFront(e)
	} else {
		p.keys[k] = p.lru.InsertAfter(e, at)
	}
	return true
}

// parseUpdateSummary splits the summary of update n (see update) into the
// triggering alert's summary, the repeats merged and the time of the first
// alert. ok is false for update 0 and for a summary not in that form.
func parseUpdateSummary(s string, n int) (base string, merged int, since time.Time, ok bool) {
	i := strings.LastIndex(s, " (update ")
	if n < 1 || i < 0 || !strings.HasSuffix(s, ")") {
		return "", 0, time.Time{}, false
	}
	num, rest, ok1 := strings.Cut(s[i+len(" (update "):len(s)-1], ": ")
	cnt, ts, ok2 := strings.Cut(rest, " repeats since ")
	if !ok1 || !ok2 || num != strconv.Itoa(n) {
		return "", 0, time.Time{}, false
	}
	m, err := strconv.Atoi(cnt)
	if err != nil || m < 0 {
		return "", 0, time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return "", 0, time.Time{}, false
	}
	return s[:i], m, t, true
}

// Due appends the updates whose UpdateInterval has passed at now and forgets keys
// whose DedupeWindow has passed.
func (p *Policy) Due(dst []Emitted, now time.Time) []Emitted {
	p.mu.Lock()
	defer p.mu.Unlock()
	for el := p.lru.Front(); el != nil; {
		next := el.Next()
		e := el.Value.(*policyEntry)
		if e.pending && now.Sub(e.lastEmit) >= p.cfg.UpdateInterval {
			dst = append(dst, p.update(e, now))
		}
		if !e.pending && now.Sub(e.lastSeen) > p.cfg.DedupeWindow {
			p.lru.Remove(el)
			delete(p.keys, e.key)
		}
		el = next
	}
	return dst
}

// Flush appends every pending update regardless of the interval (shutdown).
func (p *Policy) Flush(dst []Emitted, now time.Time) []Emitted {
	p.mu.Lock()
	defer p.mu.Unlock()
	for el := p.lru.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*policyEntry); e.pending {
			dst = append(dst, p.update(e, now))
		}
	}
	return dst
}

// Len returns the number of (type, fingerprint) keys held.
func (p *Policy) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.keys)
}

// update builds the next update of e; p.mu is held.
func (p *Policy) update(e *policyEntry, now time.Time) Emitted {
	e.alert.Update++
	e.pending = false
	e.lastEmit = now
	u := e.alert
	u.Evidence = slices.Clone(e.alert.Evidence)
	u.EventTime = e.latest.EventTime
	u.DetectedAt = e.latest.DetectedAt
	u.Summary = fmt.Sprintf("%s (update %d: %d repeats since %s)", e.latest.Summary, u.Update, e.merged, e.firstAt.UTC().Format(time.RFC3339))
	policyUpdates.Inc()
	return Emitted{Alert: u, TokenExp: e.exp}
}

// boundEvidence appends the entries of add that dst does not hold yet and keeps
// the last MaxEvidence.
func (p *Policy) boundEvidence(dst, add []tokenwatch.Evidence) []tokenwatch.Evidence {
	for _, ev := range add {
		if !slices.ContainsFunc(dst, func(x tokenwatch.Evidence) bool { return sameUse(&x, &ev) }) {
			dst = append(dst, ev)
		}
	}
	if n := len(dst) - p.cfg.MaxEvidence; n > 0 {
		dst = append(dst[:0:0], dst[n:]...)
	}
	return dst
}

func sameUse(a, b *tokenwatch.Evidence) bool {
	return a.Time.Equal(b.Time) && a.IP == b.IP && a.Topic == b.Topic && a.File == b.File &&
		a.Line == b.Line && ptrEq(a.Partition, b.Partition) && ptrEq(a.Offset, b.Offset)
}

func ptrEq[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Router maps an alert to the names of the sinks it goes to.
type Router struct {
	routes []RouteConfig
	def    []string
}

// NewRouter returns the router of c.
func NewRouter(c Config) *Router { return &Router{routes: c.Routes, def: c.DefaultSinks} }

// Route returns the sinks for a, each once, in configuration order.
func (r *Router) Route(a *tokenwatch.Alert) []string {
	var out []string
	matched := false
	for i := range r.routes {
		rt := &r.routes[i]
		if len(rt.Types) > 0 && !slices.Contains(rt.Types, a.Type) {
			continue
		}
		if rt.MinSeverity != "" && severityRank[a.Severity] < severityRank[rt.MinSeverity] {
			continue
		}
		if len(rt.Services) > 0 && !routeServiceMatch(rt.Services, a) {
			continue
		}
		matched = true
		for _, s := range rt.Sinks {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	if !matched {
		out = append(out, r.def...)
	}
	return out
}

func routeServiceMatch(services []string, a *tokenwatch.Alert) bool {
	if slices.Contains(services, a.Service) {
		return true
	}
	for i := range a.Evidence {
		if slices.Contains(services, a.Evidence[i].Service) {
			return true
		}
	}
	return false
}

// WebhookID returns the delivery id of an alert update for a sink: stable across
// retries and restarts, different per sink and per update.
func WebhookID(alertID string, update int, sink string) string {
	h := hashStrings(alertID, strconv.Itoa(update), sink)
	return "msg_" + h[:32]
}
