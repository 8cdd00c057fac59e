package alerts

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

func urlUnescape(s string) (string, error) { return url.QueryUnescape(s) }

func TestDefaultConfigValidates(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	keyPEM, _ := pemKey(t, "ES256")
	hook := SinkConfig{Name: "h", Type: SinkWebhook, URL: "https://soar.example/rest/container"}
	for name, tc := range map[string]struct {
		mut  func(*Config)
		want string // substring of the error; "" = valid
	}{
		"valid webhook": {func(c *Config) { c.Sinks = []SinkConfig{hook} }, ""},
		"loopback http ok": {func(c *Config) {
			c.Sinks = []SinkConfig{{Name: "h", Type: SinkWebhook, URL: "http://127.0.0.1:8080/x"}}
		}, ""},
		"plain http refused": {func(c *Config) { c.Sinks = []SinkConfig{{Name: "h", Type: SinkWebhook, URL: "http://soar.example/x"}} }, "alerts.sinks[0].url"},
		"plain http allowed": {func(c *Config) {
			c.Sinks = []SinkConfig{{Name: "h", Type: SinkWebhook, URL: "http://soar.example/x", AllowInsecureHTTP: true}}
		}, ""},
		"ftp refused":        {func(c *Config) { c.Sinks = []SinkConfig{{Name: "h", Type: SinkWebhook, URL: "ftp://x/y"}} }, "scheme"},
		"bad secret":         {func(c *Config) { h := hook; h.Secrets = []string{"hunter2"}; c.Sinks = []SinkConfig{h} }, "alerts.sinks[0].secrets[0]"},
		"unknown template":   {func(c *Config) { h := hook; h.Template = "pagerduty"; c.Sinks = []SinkConfig{h} }, "alerts.sinks[0].template"},
		"duplicate sink":     {func(c *Config) { c.Sinks = []SinkConfig{hook, hook} }, "used twice"},
		"unknown route sink": {func(c *Config) { c.Routes = []RouteConfig{{Sinks: []string{"nope"}}} }, "alerts.routes[0].sinks"},
		"unknown default":    {func(c *Config) { c.DefaultSinks = []string{"nope"} }, "alerts.default_sinks"},
		"bad severity":       {func(c *Config) { c.Policy.Severity = map[string]tokenwatch.Severity{"token_leak": "urgent"} }, "alerts.policy.severity.token_leak"},
		"bad type":           {func(c *Config) { c.Sinks = []SinkConfig{{Name: "x", Type: "email", URL: "https://x"}} }, "alerts.sinks[0].type"},
		"revoke without key": {func(c *Config) {
			c.Sinks = []SinkConfig{{Name: "r", Type: SinkRFC7009, URL: "https://idp/revoke", Issuer: "i", ClientID: "c"}}
		}, "alerts.sealing_key"},
		"revoke short key": {func(c *Config) {
			c.SealingKey = "AAAA"
			c.Sinks = []SinkConfig{{Name: "r", Type: SinkRFC7009, URL: "https://idp/revoke", Issuer: "i", ClientID: "c"}}
		}, "32"},
		"revoke bad auth": {func(c *Config) {
			c.SealingKey = strings.Repeat("A", 43) + "="
			c.Sinks = []SinkConfig{{Name: "r", Type: SinkRFC7009, URL: "https://idp/revoke", Issuer: "i", ClientID: "c", AuthMethod: "private_key_jwt"}}
		}, "auth_method"},
		"revoke bad hint": {func(c *Config) {
			c.SealingKey = strings.Repeat("A", 43) + "="
			c.Sinks = []SinkConfig{{Name: "r", Type: SinkRFC7009, URL: "https://idp/revoke", Issuer: "i", ClientID: "c", TokenTypeHint: "id_token"}}
		}, "token_type_hint"},
		"revoke valid": {func(c *Config) {
			c.SealingKey = strings.Repeat("A", 43) + "="
			c.Sinks = []SinkConfig{{Name: "r", Type: SinkRFC7009, URL: "https://idp/revoke", Issuer: "i", ClientID: "c"}}
		}, ""},
		"ssf valid": {func(c *Config) {
			c.Sinks = []SinkConfig{{Name: "s", Type: SinkSSF, URL: "https://r/ev", SETIssuer: "https://tw", Audience: []string{"a"}, KeyPEM: keyPEM}}
		}, ""},
		"ssf no key": {func(c *Config) {
			c.Sinks = []SinkConfig{{Name: "s", Type: SinkSSF, URL: "https://r/ev", SETIssuer: "https://tw", Audience: []string{"a"}}}
		}, "key_file and key_pem are empty"},
		"ssf alg mismatch": {func(c *Config) {
			c.Sinks = []SinkConfig{{Name: "s", Type: SinkSSF, URL: "https://r/ev", SETIssuer: "https://tw", Audience: []string{"a"}, KeyPEM: keyPEM, Alg: "RS256"}}
		}, "needs alg ES256"},
		"ssf bad event": {func(c *Config) {
			c.Sinks = []SinkConfig{{Name: "s", Type: SinkSSF, URL: "https://r/ev", SETIssuer: "https://tw", Audience: []string{"a"}, KeyPEM: keyPEM, Events: []string{"account-disabled"}}}
		}, "events[0]"},
		"both outboxes":    {func(c *Config) { c.Outbox.File = "x"; c.Outbox.Brokers = []string{"b:9092"} }, "alerts.outbox"},
		"bad retry":        {func(c *Config) { c.Retry.MaxBackoff = time.Millisecond }, "alerts.retry"},
		"bad jitter":       {func(c *Config) { c.Retry.Jitter = 2 }, "alerts.retry.jitter"},
		"zero breaker":     {func(c *Config) { c.CircuitBreaker.Failures = 0 }, "alerts.circuit_breaker.failures"},
		"zero concurrency": {func(c *Config) { c.Dispatcher.Concurrency = 0 }, "alerts.dispatcher.concurrency"},
		"negative window":  {func(c *Config) { c.Policy.DedupeWindow = -time.Second }, "alerts.policy.dedupe_window"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(SealingKeyEnv, "")
			c := DefaultConfig()
			tc.mut(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSealingKeyFromEnvironment(t *testing.T) {
	c := DefaultConfig()
	c.SealingKey = "not base64!"
	env := func(k string) string {
		if k == SealingKeyEnv {
			return strings.Repeat("B", 43) + "="
		}
		return ""
	}
	if _, err := NewSealerFromConfig(c, env); err != nil {
		t.Fatalf("environment key not preferred: %v", err)
	}
	if _, err := NewSealerFromConfig(c, func(string) string { return "" }); err == nil {
		t.Fatal("bad config key accepted")
	}
}
