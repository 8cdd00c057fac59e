package policy

import (
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/tokenwatch/tokenwatch"
)

// compiled is a validated File prepared for matching.
//
// Globs are compiled once (a literal is a string comparison, "prefix*" a
// prefix test; only the rest goes to path.Match), and the results of client,
// service and scope lookups are memoised. The memo maps are guarded by the
// Engine's mutex and bounded by maxMemo; a reload compiles a new policy with
// empty memos.
type compiled struct {
	file     File
	def      *clientPolicy
	clients  []*clientPolicy
	services []serviceRule

	// byClient: no client rule names an issuer, so the client_id alone
	// chooses the rule (the memo hashes one string, not two).
	byClient    bool
	clientMemo  map[string]*clientPolicy
	clientMemo2 map[[2]string]*clientPolicy
	serviceMemo map[string]*serviceRule
	// The last clients and services looked up: a stream names few, so most
	// lookups compare a few strings instead of hashing them.
	lastClients  [lastSlots]lastClient
	lastServices [lastSlots]lastService
	nextClient   int
	nextService  int

	// digest identifies the policy in the state log: state restored under
	// another policy has its (token, service) pairs checked again.
	digest [8]byte
}

const maxMemo = 10_000

const lastSlots = 4

type lastClient struct {
	issuer, clientID string
	p                *clientPolicy // nil: empty slot
}

type lastService struct {
	name  string
	r     *serviceRule
	valid bool
}

type clientPolicy struct {
	ClientRule
	issuer, clientID glob
	scopes           []glob
	scopeMatch       bool // a scope glob needs path.Match: results are memoised
	prefixes         []netip.Prefix
	scopeMemo        map[string]bool
}

type serviceRule struct {
	ServiceRule
	service   glob
	audiences []glob
}

// glob is a compiled path.Match pattern.
type glob struct {
	kind    byte // globAny, globLiteral, globPrefix, globMatch
	pattern string
}

const (
	globAny = iota
	globLiteral
	globPrefix
	globMatch
)

// compileGlob compiles a valid pattern; an empty pattern matches anything.
func compileGlob(pattern string) glob {
	switch meta := strings.IndexAny(pattern, `*?[\`); {
	case pattern == "" || pattern == "*":
		return glob{kind: globAny}
	case meta < 0:
		return glob{globLiteral, pattern}
	case meta == len(pattern)-1 && pattern[meta] == '*':
		return glob{globPrefix, pattern[:meta]}
	}
	return glob{globMatch, pattern}
}

func (g glob) match(s string) bool {
	switch g.kind {
	case globAny:
		return true
	case globLiteral:
		return s == g.pattern
	case globPrefix:
		// path.Match's * does not cross a '/'.
		return strings.HasPrefix(s, g.pattern) && strings.IndexByte(s[len(g.pattern):], '/') < 0
	}
	ok, _ := path.Match(g.pattern, s)
	return ok
}

func compileGlobs(patterns []string) []glob {
	out := make([]glob, len(patterns))
	for i, p := range patterns {
		out[i] = compileGlob(p)
	}
	return out
}

func compile(f File) *compiled {
	c := &compiled{file: f, byClient: true, serviceMemo: map[string]*serviceRule{}}
	j, err := json.Marshal(f) // map keys sorted: deterministic
	if err != nil {
		panic("BUG: policy file does not marshal: " + err.Error())
	}
	sum := sha256.Sum256(j)
	c.digest = [8]byte(sum[:8])
	c.def = newClientPolicy(f.Defaults, ClientRule{})
	for _, r := range f.Clients {
		cp := newClientPolicy(r, f.Defaults)
		c.byClient = c.byClient && cp.issuer.kind == globAny
		c.clients = append(c.clients, cp)
	}
	if c.byClient {
		c.clientMemo = map[string]*clientPolicy{}
	} else {
		c.clientMemo2 = map[[2]string]*clientPolicy{}
	}
	for _, r := range f.Services {
		c.services = append(c.services, serviceRule{ServiceRule: r, service: compileGlob(r.Service), audiences: compileGlobs(r.Audiences)})
	}
	return c
}

// newClientPolicy fills r's unset fields from def.
func newClientPolicy(r, def ClientRule) *clientPolicy {
	if r.MaxLifetime == 0 {
		r.MaxLifetime = def.MaxLifetime
	}
	if len(r.AllowedScopes) == 0 {
		r.AllowedScopes = def.AllowedScopes
	}
	r.SenderConstrained = r.SenderConstrained || def.SenderConstrained
	p := &clientPolicy{ClientRule: r, issuer: compileGlob(r.Issuer), clientID: compileGlob(r.ClientID), scopes: compileGlobs(r.AllowedScopes), scopeMemo: map[string]bool{}}
	for _, g := range p.scopes {
		p.scopeMatch = p.scopeMatch || g.kind == globMatch
	}
	for _, n := range r.Networks {
		p.prefixes = append(p.prefixes, netip.MustParsePrefix(n)) // validated
	}
	return p
}

// client returns the first client rule matching (issuer, clientID), or the defaults.
func (c *compiled) client(issuer, clientID string) *clientPolicy {
	if len(c.clients) == 0 {
		return c.def
	}
	for i := range c.lastClients {
		if l := &c.lastClients[i]; l.p != nil && l.clientID == clientID && l.issuer == issuer {
			return l.p
		}
	}
	p := c.lookupClient(issuer, clientID)
	c.lastClients[c.nextClient] = lastClient{issuer, clientID, p}
	c.nextClient = (c.nextClient + 1) % lastSlots
	return p
}

func (c *compiled) lookupClient(issuer, clientID string) *clientPolicy {
	if c.byClient {
		if p, ok := c.clientMemo[clientID]; ok {
			return p
		}
		p := c.match(issuer, clientID)
		memo(c.clientMemo, clientID, p)
		return p
	}
	k := [2]string{issuer, clientID}
	if p, ok := c.clientMemo2[k]; ok {
		return p
	}
	p := c.match(issuer, clientID)
	memo(c.clientMemo2, k, p)
	return p
}

func (c *compiled) match(issuer, clientID string) *clientPolicy {
	for _, r := range c.clients {
		if r.issuer.match(issuer) && r.clientID.match(clientID) {
			return r
		}
	}
	return c.def
}

// service returns the service rule for name, or nil.
func (c *compiled) service(name string) *serviceRule {
	if name == "" || len(c.services) == 0 {
		return nil
	}
	for i := range c.lastServices {
		if l := &c.lastServices[i]; l.valid && l.name == name {
			return l.r
		}
	}
	r := c.lookupService(name)
	c.lastServices[c.nextService] = lastService{name, r, true}
	c.nextService = (c.nextService + 1) % lastSlots
	return r
}

func (c *compiled) lookupService(name string) *serviceRule {
	if r, ok := c.serviceMemo[name]; ok {
		return r
	}
	var r *serviceRule
	for i := range c.services {
		if c.services[i].service.match(name) {
			r = &c.services[i]
			break
		}
	}
	memo(c.serviceMemo, name, r)
	return r
}

// memo stores v under k, starting over when the map is full.
func memo[K comparable, V any](m map[K]V, k K, v V) {
	if len(m) >= maxMemo {
		clear(m)
	}
	m[k] = v
}

func (c *compiled) severity(typ string) tokenwatch.Severity {
	if s, ok := c.file.Severities[typ]; ok {
		return s
	}
	return defaultSeverity[typ]
}

// scopeAllowed reports whether scope matches one of the allowed globs (any
// scope is allowed when the list is empty).
func (p *clientPolicy) scopeAllowed(scope string) bool {
	if len(p.scopes) == 0 {
		return true
	}
	if !p.scopeMatch { // literals and prefixes: cheaper than a memo's hash
		for _, g := range p.scopes {
			if g.match(scope) {
				return true
			}
		}
		return false
	}
	if ok, seen := p.scopeMemo[scope]; seen {
		return ok
	}
	ok := false
	for _, g := range p.scopes {
		if g.match(scope) {
			ok = true
			break
		}
	}
	memo(p.scopeMemo, scope, ok)
	return ok
}

// onNetwork reports whether a workload use from ip / asn is where it may be.
func (p *clientPolicy) onNetwork(ip netip.Addr, asn uint32) bool {
	ip = ip.Unmap()
	for _, pr := range p.prefixes {
		if pr.Contains(ip) {
			return true
		}
	}
	return asn != 0 && slices.Contains(p.ASNs, asn)
}
