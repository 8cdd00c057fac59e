package parse

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; "" = valid
	}{
		{"default", func(*Config) {}, ""},
		{"mapping ok", func(c *Config) { c.Fields.IP = "req.remote"; c.Fields.DPoP = "request.headers.dpop" }, ""},
		{"mapping empty segment", func(c *Config) { c.Fields.IP = "req..remote" }, "parse.fields.ip:"},
		{"mapping trailing dot", func(c *Config) { c.Fields.UserAgent = "ua." }, "parse.fields.user_agent:"},
		{"mapping spaces", func(c *Config) { c.Fields.XForwardedFor = " xff" }, "parse.fields.x_forwarded_for:"},
		{"mapping too long", func(c *Config) { c.Fields.Path = strings.Repeat("a", maxKeyPath+1) }, "parse.fields.path:"},
		{"layout ok", func(c *Config) { c.TimeLayout = "02/01/2006 15:04:05" }, ""},
		{"layout without elements", func(c *Config) { c.TimeLayout = "dd/mm/yyyy" }, "parse.time_layout:"},
		{"zone ok", func(c *Config) { c.TimeZone = "Local" }, ""},
		{"zone unknown", func(c *Config) { c.TimeZone = "Mars/Olympus" }, "parse.time_zone:"},
		{"proxy single address", func(c *Config) { c.TrustedProxies = []string{"203.0.113.7", "2001:db8::1"} }, ""},
		{"proxy bad", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.0/33"} }, "parse.trusted_proxies[1]:"},
		{"proxy hostname", func(c *Config) { c.TrustedProxies = []string{"lb.internal"} }, "parse.trusted_proxies[0]:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(c); err != nil {
					t.Fatalf("New() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tc.want)
			}
			if _, err := New(c); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestConfigValidateReportsAll(t *testing.T) {
	c := DefaultConfig()
	c.Fields.IP = "a..b"
	c.TimeZone = "Nowhere/Else"
	c.TrustedProxies = []string{"x"}
	err := c.Validate()
	for _, want := range []string{"parse.fields.ip:", "parse.time_zone:", "parse.trusted_proxies[0]:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
fields:
  ip: req.remote
  time: ts
  user: who
time_layout: "02/01/2006 15:04:05"
time_zone: Europe/Berlin
trusted_proxies: ["198.51.100.0/24"]
`
	c := DefaultConfig()
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if c.Fields.IP != "req.remote" || c.Fields.Time != "ts" || c.Fields.User != "who" ||
		c.TimeLayout != "02/01/2006 15:04:05" || c.TimeZone != "Europe/Berlin" ||
		len(c.TrustedProxies) != 1 || c.TrustedProxies[0] != "198.51.100.0/24" {
		t.Errorf("decoded %+v", c)
	}
	// An explicit empty list trusts no proxy.
	c = DefaultConfig()
	if err := yaml.Unmarshal([]byte("trusted_proxies: []"), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 0 {
		t.Errorf("trusted_proxies: [] decoded as %v", c.TrustedProxies)
	}
}
