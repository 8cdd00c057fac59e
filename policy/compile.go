package policy

import (
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"path"
	"slices"

	"github.com/tokenwatch/tokenwatch"
)

// compiled is a validated File prepared for matching.
//
// Glob matching is the costly part of a check, so the results are memoised per
// (issuer, client_id), service and scope. The memo maps are guarded by the
// Engine's mutex and bounded by maxMemo; a reload compiles a new policy with
// empty memos.
type compiled struct {
	file     File
	def      *clientPolicy
	clients  []*clientPolicy
	services []ServiceRule

	clientMemo  map[[2]string]*clientPolicy
	serviceMemo map[string]*ServiceRule

	// digest identifies the policy in the state log: state restored under
	// another policy has its (token, service) pairs checked again.
	digest [8]byte
}

const maxMemo = 10_000

type clientPolicy struct {
	ClientRule
	prefixes  []netip.Prefix
	scopeMemo map[string]bool
}

func compile(f File) *compiled {
	c := &compiled{file: f, services: f.Services, clientMemo: map[[2]string]*clientPolicy{}, serviceMemo: map[string]*ServiceRule{}}
	j, err := json.Marshal(f) // map keys sorted: deterministic
	if err != nil {
		panic("BUG: policy file does not marshal: " + err.Error())
	}
	sum := sha256.Sum256(j)
	c.digest = [8]byte(sum[:8])
	c.def = newClientPolicy(f.Defaults, ClientRule{})
	for _, r := range f.Clients {
		c.clients = append(c.clients, newClientPolicy(r, f.Defaults))
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
	p := &clientPolicy{ClientRule: r, scopeMemo: map[string]bool{}}
	for _, n := range r.Networks {
		p.prefixes = append(p.prefixes, netip.MustParsePrefix(n)) // validated
	}
	return p
}

// glob reports whether s matches pattern; an empty pattern matches anything.
func glob(pattern, s string) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	ok, _ := path.Match(pattern, s)
	return ok
}

// client returns the first client rule matching (issuer, clientID), or the defaults.
func (c *compiled) client(issuer, clientID string) *clientPolicy {
	k := [2]string{issuer, clientID}
	if p, ok := c.clientMemo[k]; ok {
		return p
	}
	p := c.def
	for _, r := range c.clients {
		if glob(r.Issuer, issuer) && glob(r.ClientID, clientID) {
			p = r
			break
		}
	}
	memo(c.clientMemo, k, p)
	return p
}

// service returns the service rule for name, or nil.
func (c *compiled) service(name string) *ServiceRule {
	if name == "" {
		return nil
	}
	if r, ok := c.serviceMemo[name]; ok {
		return r
	}
	var r *ServiceRule
	for i := range c.services {
		if glob(c.services[i].Service, name) {
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
	if len(p.AllowedScopes) == 0 {
		return true
	}
	if ok, seen := p.scopeMemo[scope]; seen {
		return ok
	}
	ok := false
	for _, g := range p.AllowedScopes {
		if glob(g, scope) {
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
