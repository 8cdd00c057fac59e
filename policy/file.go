package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch"
)

// File is the policy file. Every section is optional; an empty file (or no
// file) gives Defaults().
//
//	defaults:
//	  max_lifetime: 1h            # access tokens living longer are reported
//	clients:                      # first match wins; globs (path.Match) allowed
//	  - issuer: "https://idp.example.com"
//	    client_id: "web-*"
//	    max_lifetime: 15m
//	    allowed_scopes: ["orders:*", "profile:read"]
//	    sender_constrained: true  # tokens must carry cnf (DPoP jkt or mTLS x5t#S256)
//	  - client_id: "ci-*"
//	    workload: true            # a non-human client
//	    networks: ["35.190.0.0/16"]
//	    asns: [15169]
//	services:                     # which audiences each service may receive
//	  - service: "billing-*"
//	    audiences: ["https://billing.example.com"]
//	windows:
//	  scope_escalation: 24h
//	  refresh_reuse: 24h
//	  dispensary: 10m
//	dispensary_min_subjects: 5
//	severities: {lifetime_policy_violation: info}
type File struct {
	Defaults              ClientRule                     `yaml:"defaults"`
	Clients               []ClientRule                   `yaml:"clients"`
	Services              []ServiceRule                  `yaml:"services"`
	Windows               Windows                        `yaml:"windows"`
	DispensaryMinSubjects int                            `yaml:"dispensary_min_subjects"`
	Severities            map[string]tokenwatch.Severity `yaml:"severities"`
}

// ClientRule is the policy of the clients it matches.
type ClientRule struct {
	// Issuer and ClientID are glob patterns (path.Match syntax); empty matches any.
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// MaxLifetime bounds exp - iat of access tokens; 0 inherits the default.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// AllowedScopes are glob patterns; empty allows any scope.
	AllowedScopes []string `yaml:"allowed_scopes"`
	// SenderConstrained requires a cnf claim (RFC 9449 DPoP jkt or RFC 8705 x5t#S256).
	SenderConstrained bool `yaml:"sender_constrained"`
	// Workload marks a non-human client (CI pipeline, workload, agent) whose
	// tokens may be used only from Networks / ASNs.
	Workload bool     `yaml:"workload"`
	Networks []string `yaml:"networks"`
	ASNs     []uint32 `yaml:"asns"`
}

// ServiceRule says which token audiences a service may receive.
type ServiceRule struct {
	// Service is a glob over the service name (from the log's service/host mapping).
	Service string `yaml:"service"`
	// Audiences are glob patterns; a token none of whose aud values match is reported.
	Audiences []string `yaml:"audiences"`
}

// Windows are the event-time windows of the stateful findings.
type Windows struct {
	ScopeEscalation time.Duration `yaml:"scope_escalation"`
	RefreshReuse    time.Duration `yaml:"refresh_reuse"`
	Dispensary      time.Duration `yaml:"dispensary"`
}

// maxDispensarySubjects bounds dispensary_min_subjects (an endpoint keeps four
// times as many leaks).
const maxDispensarySubjects = 1000

// Defaults is the policy with no policy file: access tokens may live one hour,
// any scope and audience is allowed, ID tokens must not be bearer credentials,
// DPoP-bound tokens must be presented with DPoP, refresh tokens must not be
// logged, and five distinct subjects leaked by one endpoint within ten minutes
// make it a dispensary.
func Defaults() File {
	return File{
		Defaults:              ClientRule{MaxLifetime: time.Hour},
		Windows:               Windows{ScopeEscalation: 24 * time.Hour, RefreshReuse: 24 * time.Hour, Dispensary: 10 * time.Minute},
		DispensaryMinSubjects: 5,
	}
}

// defaultSeverity of each finding type: posture findings are low or info;
// those that mean a token is probably in the wrong hands are higher.
var defaultSeverity = map[string]tokenwatch.Severity{
	TypeLifetime:           tokenwatch.SeverityInfo,
	TypeScope:              tokenwatch.SeverityLow,
	TypeScopeEscalation:    tokenwatch.SeverityMedium,
	TypeAudienceMismatch:   tokenwatch.SeverityLow,
	TypeIDTokenAsAccess:    tokenwatch.SeverityLow,
	TypeBoundAsBearer:      tokenwatch.SeverityLow,
	TypeSenderConstraint:   tokenwatch.SeverityInfo,
	TypeRefreshInLog:       tokenwatch.SeverityLow,
	TypeRefreshReuse:       tokenwatch.SeverityHigh,
	TypeDispensary:         tokenwatch.SeverityHigh,
	TypeWorkloadOffNetwork: tokenwatch.SeverityHigh,
}

// Parse decodes and validates a policy file. Unknown keys are errors with
// their line numbers; every mistake is reported, each naming its field.
func Parse(b []byte) (File, error) {
	f := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // io.EOF: empty file
		return File{}, fmt.Errorf("policy: %w", err)
	}
	if err := f.Validate(); err != nil {
		return File{}, err
	}
	return f, nil
}

// Load reads and parses the policy file at p.
func Load(p string) (File, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return File{}, fmt.Errorf("policy: read %s: %w", p, err)
	}
	return Parse(b)
}

// Validate reports every mistake in f.
func (f File) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	checkGlob := func(field, g string) {
		if _, err := path.Match(g, ""); err != nil {
			add("%s: %q is not a valid glob (%v); use * and ? wildcards, [a-z] classes", field, g, err)
		}
	}
	checkRule := func(field string, r ClientRule) {
		checkGlob(field+".issuer", r.Issuer)
		checkGlob(field+".client_id", r.ClientID)
		if r.MaxLifetime < 0 {
			add("%s.max_lifetime: %s is negative; use a duration such as 1h", field, r.MaxLifetime)
		}
		for j, s := range r.AllowedScopes {
			checkGlob(fmt.Sprintf("%s.allowed_scopes[%d]", field, j), s)
		}
		for j, n := range r.Networks {
			if _, err := netip.ParsePrefix(n); err != nil {
				add("%s.networks[%d]: %q is not a CIDR prefix; write it like 35.190.0.0/16 or 2001:db8::/32", field, j, n)
			}
		}
		if (len(r.Networks) > 0 || len(r.ASNs) > 0) && !r.Workload {
			add("%s: networks/asns are only enforced for workload clients; add workload: true or remove them", field)
		}
		if r.Workload && len(r.Networks) == 0 && len(r.ASNs) == 0 {
			add("%s: workload: true needs networks or asns to check uses against", field)
		}
	}
	checkRule("defaults", f.Defaults)
	if f.Defaults.Issuer != "" || f.Defaults.ClientID != "" {
		add("defaults: issuer/client_id do not apply to defaults; put them in a clients entry")
	}
	for i, c := range f.Clients {
		field := fmt.Sprintf("clients[%d]", i)
		if c.Issuer == "" && c.ClientID == "" {
			add("%s: set issuer or client_id (globs allowed) so the rule matches something specific", field)
		}
		checkRule(field, c)
	}
	for i, s := range f.Services {
		field := fmt.Sprintf("services[%d]", i)
		if s.Service == "" {
			add("%s.service: required (a service name or glob)", field)
		}
		checkGlob(field+".service", s.Service)
		if len(s.Audiences) == 0 {
			add("%s.audiences: list at least one audience the service may receive", field)
		}
		for j, a := range s.Audiences {
			checkGlob(fmt.Sprintf("%s.audiences[%d]", field, j), a)
		}
	}
	for name, d := range map[string]time.Duration{"windows.scope_escalation": f.Windows.ScopeEscalation, "windows.refresh_reuse": f.Windows.RefreshReuse, "windows.dispensary": f.Windows.Dispensary} {
		if d <= 0 {
			add("%s: must be a positive duration such as 10m", name)
		}
	}
	if f.DispensaryMinSubjects < 2 || f.DispensaryMinSubjects > maxDispensarySubjects {
		add("dispensary_min_subjects: %d is out of range; use 2 to %d (default 5)", f.DispensaryMinSubjects, maxDispensarySubjects)
	}
	for typ, sev := range f.Severities {
		if _, ok := defaultSeverity[typ]; !ok {
			add("severities.%s: unknown finding type; known types: %s", typ, strings.Join(Types, ", "))
		}
		switch sev {
		case tokenwatch.SeverityInfo, tokenwatch.SeverityLow, tokenwatch.SeverityMedium, tokenwatch.SeverityHigh, tokenwatch.SeverityCritical:
		default:
			add("severities.%s: %q is not a severity; use info, low, medium, high or critical", typ, sev)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}
