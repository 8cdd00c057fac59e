package parse

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config configures a Parser. It maps onto the `parse:` section of the YAML
// configuration (one per source when sources need different mappings).
type Config struct {
	// Fields maps a field to the key that holds it in unusual layouts: a dotted JSON
	// key path ("req.remote", "request.headers.x-real-client") or a logfmt key. A
	// mapping takes precedence over every built-in key for that field. Keys match
	// case-insensitively; a dotted path also matches a flattened key with dots.
	Fields FieldMap `yaml:"fields"`
	// TimeLayout is a Go time layout ("02/01/2006 15:04:05") tried first on the time
	// field of JSON and logfmt records, before the built-in forms (ParseTime).
	TimeLayout string `yaml:"time_layout"`
	// TimeZone is the zone of times written without one: "UTC" (default), "Local",
	// or an IANA name such as "Europe/Berlin".
	TimeZone string `yaml:"time_zone"`
	// TrustedProxies are the proxies and load balancers whose X-Forwarded-For /
	// Forwarded headers are believed, as CIDRs or single addresses. The default is
	// loopback and private ranges (127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12,
	// 192.168.0.0/16, fc00::/7); an empty list trusts no proxy.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// FieldMap names, per field, the key that carries it. Empty means built-in keys only.
type FieldMap struct {
	Time          string `yaml:"time"`
	IP            string `yaml:"ip"`
	XForwardedFor string `yaml:"x_forwarded_for"`
	Forwarded     string `yaml:"forwarded"`
	UserAgent     string `yaml:"user_agent"`
	User          string `yaml:"user"`
	Method        string `yaml:"method"`
	Path          string `yaml:"path"`
	Status        string `yaml:"status"`
	Service       string `yaml:"service"`
	Host          string `yaml:"host"`
	DPoP          string `yaml:"dpop"`
}

// entries lists the mapping as (yaml key, field, key path).
func (m FieldMap) entries() []fieldMapping {
	return []fieldMapping{
		{"time", fTime, m.Time},
		{"ip", fIP, m.IP},
		{"x_forwarded_for", fXFF, m.XForwardedFor},
		{"forwarded", fForwarded, m.Forwarded},
		{"user_agent", fUA, m.UserAgent},
		{"user", fUser, m.User},
		{"method", fMethod, m.Method},
		{"path", fPath, m.Path},
		{"status", fStatus, m.Status},
		{"service", fService, m.Service},
		{"host", fHost, m.Host},
		{"dpop", fDPoP, m.DPoP},
	}
}

type fieldMapping struct {
	yamlKey string
	field   field
	path    string
}

// DefaultConfig returns the configuration used when the YAML says nothing.
func DefaultConfig() Config {
	return Config{
		TimeZone: "UTC",
		TrustedProxies: []string{
			"127.0.0.0/8", "::1/128",
			"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
		},
	}
}

// Validate reports every mistake in c, each naming its YAML field and the fix.
func (c Config) Validate() error {
	var errs []error
	for _, e := range c.Fields.entries() {
		if e.path == "" {
			continue
		}
		if err := validKeyPath(e.path); err != nil {
			errs = append(errs, fmt.Errorf("parse.fields.%s: %q %v; write a JSON key path like \"request.remote_ip\" or a logfmt key, or leave it empty", e.yamlKey, e.path, err))
		}
	}
	if c.TimeLayout != "" {
		ref := time.Date(2026, 11, 25, 8, 14, 6, 0, time.UTC)
		s := ref.Format(c.TimeLayout)
		if s == c.TimeLayout {
			errs = append(errs, fmt.Errorf("parse.time_layout: %q has no layout elements; write it with Go's reference time, e.g. \"02/01/2006 15:04:05\"", c.TimeLayout))
		} else if _, err := time.Parse(c.TimeLayout, s); err != nil {
			errs = append(errs, fmt.Errorf("parse.time_layout: %q does not parse its own output (%v); write it with Go's reference time Mon Jan 2 15:04:05 MST 2006", c.TimeLayout, err))
		}
	}
	if _, err := loadZone(c.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("parse.time_zone: %q: %v; use \"UTC\", \"Local\" or an IANA zone name such as \"Europe/Berlin\" (the host needs tzdata)", c.TimeZone, err))
	}
	for i, s := range c.TrustedProxies {
		if _, err := parsePrefix(s); err != nil {
			errs = append(errs, fmt.Errorf("parse.trusted_proxies[%d]: %q is not a CIDR or IP address; write e.g. \"10.0.0.0/8\" or \"203.0.113.7\"", i, s))
		}
	}
	return errors.Join(errs...)
}

func validKeyPath(p string) error {
	if strings.TrimSpace(p) != p {
		return fmt.Errorf("has leading or trailing spaces")
	}
	if len(p) > maxKeyPath {
		return fmt.Errorf("is longer than %d bytes", maxKeyPath)
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Errorf("has an empty segment")
		}
	}
	return nil
}

func loadZone(name string) (*time.Location, error) {
	switch name {
	case "", "UTC", "utc":
		return time.UTC, nil
	case "Local", "local":
		return time.Local, nil
	}
	return time.LoadLocation(name)
}

func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
