package alerts

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Sink types.
const (
	SinkWebhook = "webhook"
	SinkRFC7009 = "rfc7009"
	SinkSSF     = "ssf"
)

// SealingKeyEnv is the environment variable that overrides Config.SealingKey.
const SealingKeyEnv = "TOKENWATCH_ALERTS_SEALING_KEY"

// Config is the alerts section of the tokenwatch configuration.
type Config struct {
	// Policy decides severity, suppression and updates.
	Policy PolicyConfig `yaml:"policy"`
	// Sinks are the named delivery endpoints.
	Sinks []SinkConfig `yaml:"sinks"`
	// Routes send alerts to sinks; an alert goes to the union of the sinks of every
	// route it matches, or to DefaultSinks when it matches none.
	Routes []RouteConfig `yaml:"routes"`
	// DefaultSinks receive alerts that match no route. Empty: such alerts are
	// written to the outbox but delivered nowhere.
	DefaultSinks []string `yaml:"default_sinks"`
	// Outbox is where alerts wait for delivery.
	Outbox OutboxConfig `yaml:"outbox"`
	// DeadLetter is where undeliverable alerts go.
	DeadLetter DeadLetterConfig `yaml:"dead_letter"`
	// SealingKey is the base64 (standard or URL alphabet) 32-byte AES-256 key that
	// seals token values for RFC 7009 sinks. TOKENWATCH_ALERTS_SEALING_KEY overrides
	// it. Required only when an rfc7009 sink is configured.
	SealingKey string `yaml:"sealing_key"`
	// Retry are the delivery retry parameters.
	Retry RetryConfig `yaml:"retry"`
	// CircuitBreaker is applied per sink.
	CircuitBreaker BreakerConfig `yaml:"circuit_breaker"`
	// Dispatcher settings.
	Dispatcher DispatcherConfig `yaml:"dispatcher"`
}

// PolicyConfig is the alert policy.
type PolicyConfig struct {
	// Severity overrides the severity the anomaly engine gave, per alert type.
	Severity map[string]tokenwatch.Severity `yaml:"severity"`
	// MinSeverity drops alerts below it (after overrides). Default info (keep all).
	MinSeverity tokenwatch.Severity `yaml:"min_severity"`
	// DedupeWindow: further alerts of the same (type, fingerprint) within this
	// window of the last one are merged into updates of the first alert.
	DedupeWindow time.Duration `yaml:"dedupe_window"`
	// UpdateInterval: an update of a suppressed alert is emitted at most this often.
	UpdateInterval time.Duration `yaml:"update_interval"`
	// MaxEvidence bounds the evidence list of an alert and its updates (the last
	// MaxEvidence uses are kept).
	MaxEvidence int `yaml:"max_evidence"`
	// MaxKeys bounds the number of (type, fingerprint) keys kept in memory; the
	// least recently seen are forgotten first.
	MaxKeys int `yaml:"max_keys"`
	// RestoreTimeout bounds how long the outbox stage reads the alerts of the
	// last DedupeWindow back from the outbox at start to rebuild the policy
	// state; 0 disables the restore (the state starts empty).
	RestoreTimeout time.Duration `yaml:"restore_timeout"`
}

// RouteConfig is one routing rule. Empty match fields match everything.
type RouteConfig struct {
	Name        string              `yaml:"name"`
	Types       []string            `yaml:"types"`
	MinSeverity tokenwatch.Severity `yaml:"min_severity"`
	Services    []string            `yaml:"services"`
	Sinks       []string            `yaml:"sinks"`
}

// SinkConfig describes one delivery endpoint. Which fields apply depends on Type.
type SinkConfig struct {
	Name string `yaml:"name"`
	// Type is webhook, rfc7009 or ssf.
	Type string `yaml:"type"`
	// URL is the endpoint (webhook URL, RFC 7009 revocation endpoint, RFC 8935
	// push endpoint). https is required unless the host is loopback or
	// AllowInsecureHTTP is set.
	URL               string        `yaml:"url"`
	AllowInsecureHTTP bool          `yaml:"allow_insecure_http"`
	Timeout           time.Duration `yaml:"timeout"`
	// Headers are added to every request (e.g. ph-auth-token for Splunk SOAR,
	// Authorization for Cortex XSOAR or an SSF receiver).
	Headers map[string]string `yaml:"headers"`

	// Webhook: Standard Webhooks secrets "whsec_<base64>"; every secret signs
	// (rotation). Empty: requests are not signed.
	Secrets []string `yaml:"secrets"`
	// Template names a built-in body template (raw, splunk_soar, xsoar, slack);
	// TemplateFile is a custom Go text/template file instead.
	Template     string `yaml:"template"`
	TemplateFile string `yaml:"template_file"`
	ContentType  string `yaml:"content_type"`
	// TemplateVars are passed to the template as .Vars (e.g. label for Splunk
	// SOAR, incident_type for Cortex XSOAR).
	TemplateVars map[string]string `yaml:"template_vars"`

	// RFC 7009: the issuer whose tokens this endpoint revokes (matched against the
	// alert's issuer; empty matches alerts without an issuer only if
	// MatchAnyIssuer is set).
	Issuer         string `yaml:"issuer"`
	MatchAnyIssuer bool   `yaml:"match_any_issuer"`
	ClientID       string `yaml:"client_id"`
	ClientSecret   string `yaml:"client_secret"`
	// AuthMethod is client_secret_basic (default) or client_secret_post.
	AuthMethod string `yaml:"auth_method"`
	// TokenTypeHint is access_token, refresh_token or empty.
	TokenTypeHint string `yaml:"token_type_hint"`
	// Kinds are the credential kinds (detect's Finding.Kind) this endpoint
	// revokes; only those are sealed and sent. Default DefaultRevocableKinds.
	Kinds []string `yaml:"kinds"`

	// SSF: the SET issuer and audience, the signing key and the events to send.
	SETIssuer string   `yaml:"set_issuer"`
	Audience  []string `yaml:"audience"`
	// Alg is ES256 or RS256; KeyFile or KeyPEM hold the PKCS#8, SEC 1 or PKCS#1 PEM
	// private key; Kid is the JWS key id.
	Alg     string `yaml:"alg"`
	KeyFile string `yaml:"key_file"`
	KeyPEM  string `yaml:"key_pem"`
	Kid     string `yaml:"kid"`
	// Events are session-revoked, credential-change and/or credential-compromise.
	Events []string `yaml:"events"`
	// SubjectFormat is iss_sub, jwt_id or complex.
	SubjectFormat string `yaml:"subject_format"`
	// CredentialType is the credential_type member of credential-change and
	// credential-compromise events.
	CredentialType string `yaml:"credential_type"`
}

// OutboxConfig selects the durable outbox: a Kafka topic or a file.
type OutboxConfig struct {
	// Brokers of the Kafka cluster holding the outbox and dead-letter topics.
	Brokers []string `yaml:"brokers"`
	// Topic is the outbox topic (Kafka).
	Topic string `yaml:"topic"`
	// File is a JSON-lines outbox file instead of Kafka (demo, --alerts-file).
	File string `yaml:"file"`
	// WriteTimeout bounds one synchronous outbox write.
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// DeadLetterConfig selects where dead letters go.
type DeadLetterConfig struct {
	Topic string `yaml:"topic"`
	File  string `yaml:"file"`
}

// RetryConfig are the delivery retry parameters.
type RetryConfig struct {
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
	// Jitter in [0,1]: each backoff is multiplied by a random factor in [1-Jitter, 1].
	Jitter float64 `yaml:"jitter"`
	// MaxAttempts per sink before the alert is dead-lettered.
	MaxAttempts int `yaml:"max_attempts"`
	// MaxAge since the alert was enqueued before it is dead-lettered.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxRetryAfter caps a Retry-After the receiver asks for.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
}

// BreakerConfig is the per-sink circuit breaker.
type BreakerConfig struct {
	// Failures is the number of consecutive failed attempts that open the circuit.
	Failures int `yaml:"failures"`
	// Cooldown is how long an open circuit waits before one half-open probe.
	Cooldown time.Duration `yaml:"cooldown"`
}

// DispatcherConfig configures the dispatcher.
type DispatcherConfig struct {
	// InProcess runs the dispatcher inside `tokenwatch run`.
	InProcess bool `yaml:"in_process"`
	// Group is the Kafka consumer group on the outbox topic.
	Group string `yaml:"group"`
	// Concurrency is the number of alerts delivered at once.
	Concurrency int `yaml:"concurrency"`
	// StateFile keeps endpoints disabled by HTTP 410. (For a file outbox the
	// dispatcher's read position is kept beside it, in outbox.file + ".cursor".)
	StateFile string `yaml:"state_file"`
	// CommitInterval is how often delivered outbox offsets are committed.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// SessionTimeout is the Kafka consumer-group session timeout: after a crash
	// the dead dispatcher's partitions move to a live one after this long.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// DrainTimeout bounds how long an in-process dispatcher keeps delivering
	// after `tokenwatch run` stops reading; what is left stays in the outbox.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// DefaultConfig returns the defaults: no sinks (alerts are kept in the outbox),
// a one-hour dedupe window with updates at most every five minutes.
func DefaultConfig() Config {
	return Config{
		Policy: PolicyConfig{
			MinSeverity:    tokenwatch.SeverityInfo,
			DedupeWindow:   time.Hour,
			UpdateInterval: 5 * time.Minute,
			MaxEvidence:    20,
			MaxKeys:        100_000,
			RestoreTimeout: 30 * time.Second,
		},
		Outbox: OutboxConfig{
			Topic:        "tokenwatch.alerts",
			WriteTimeout: 10 * time.Second,
		},
		DeadLetter: DeadLetterConfig{Topic: "tokenwatch.alerts.dlq"},
		Retry: RetryConfig{
			InitialBackoff: 500 * time.Millisecond,
			MaxBackoff:     5 * time.Minute,
			Jitter:         0.5,
			MaxAttempts:    20,
			MaxAge:         24 * time.Hour,
			MaxRetryAfter:  15 * time.Minute,
		},
		CircuitBreaker: BreakerConfig{Failures: 5, Cooldown: 30 * time.Second},
		Dispatcher: DispatcherConfig{
			InProcess:      true,
			Group:          "tokenwatch-alerts-dispatcher",
			Concurrency:    32,
			StateFile:      "tokenwatch-alerts-state.json",
			CommitInterval: 200 * time.Millisecond,
			DrainTimeout:   10 * time.Second,
			SessionTimeout: 10 * time.Second,
		},
	}
}

// sinkDefaults fills per-type defaults into s.
func sinkDefaults(s SinkConfig) SinkConfig {
	if s.Timeout == 0 {
		s.Timeout = 10 * time.Second
	}
	switch s.Type {
	case SinkWebhook:
		if s.Template == "" && s.TemplateFile == "" {
			s.Template = "raw"
		}
		if s.ContentType == "" {
			s.ContentType = "application/json"
		}
	case SinkRFC7009:
		if s.AuthMethod == "" {
			s.AuthMethod = "client_secret_basic"
		}
		if len(s.Kinds) == 0 {
			s.Kinds = DefaultRevocableKinds
		}
	case SinkSSF:
		if s.Alg == "" {
			s.Alg = "ES256"
		}
		if len(s.Events) == 0 {
			s.Events = []string{"credential-compromise"}
		}
		if s.SubjectFormat == "" {
			s.SubjectFormat = "iss_sub"
		}
		if s.CredentialType == "" {
			s.CredentialType = "bearer-token"
		}
	}
	return s
}

var severityRank = map[tokenwatch.Severity]int{
	tokenwatch.SeverityInfo:     0,
	tokenwatch.SeverityLow:      1,
	tokenwatch.SeverityMedium:   2,
	tokenwatch.SeverityHigh:     3,
	tokenwatch.SeverityCritical: 4,
}

func validSeverity(s tokenwatch.Severity) bool { _, ok := severityRank[s]; return ok }

// Validate checks c; messages name the YAML path (under "alerts.") and the fix.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	p := c.Policy
	for typ, sev := range p.Severity {
		if !validSeverity(sev) {
			add("alerts.policy.severity.%s: %q is not a severity; use info, low, medium, high or critical", typ, sev)
		}
	}
	if p.MinSeverity != "" && !validSeverity(p.MinSeverity) {
		add("alerts.policy.min_severity: %q is not a severity; use info, low, medium, high or critical", p.MinSeverity)
	}
	if p.DedupeWindow < 0 {
		add("alerts.policy.dedupe_window: %s is negative; use 0 to disable suppression or a duration like 1h", p.DedupeWindow)
	}
	if p.UpdateInterval < 0 {
		add("alerts.policy.update_interval: %s is negative; use a duration like 5m", p.UpdateInterval)
	}
	if p.MaxEvidence < 1 {
		add("alerts.policy.max_evidence: %d must be at least 1; the default is 20", p.MaxEvidence)
	}
	if p.MaxKeys < 1 {
		add("alerts.policy.max_keys: %d must be at least 1; the default is 100000", p.MaxKeys)
	}
	if p.RestoreTimeout < 0 {
		add("alerts.policy.restore_timeout: %s is negative; use 0 to start with empty policy state or a duration like 30s", p.RestoreTimeout)
	}
	names := map[string]bool{}
	needKey := false
	for i, s := range c.Sinks {
		path := fmt.Sprintf("alerts.sinks[%d]", i)
		if s.Name == "" {
			add("%s.name: empty; give every sink a unique name", path)
		} else if names[s.Name] {
			add("%s.name: %q is used twice; sink names must be unique", path, s.Name)
		}
		names[s.Name] = true
		if s.Type == SinkRFC7009 {
			needKey = true
		}
		if err := validateSink(path, sinkDefaults(s)); err != nil {
			errs = append(errs, err)
		}
	}
	checkRefs := func(path string, refs []string) {
		for _, n := range refs {
			if !names[n] {
				add("%s: sink %q is not defined; add it under alerts.sinks or remove it", path, n)
			}
		}
	}
	for i, r := range c.Routes {
		path := fmt.Sprintf("alerts.routes[%d]", i)
		if len(r.Sinks) == 0 {
			add("%s.sinks: empty; name at least one sink", path)
		}
		checkRefs(path+".sinks", r.Sinks)
		if r.MinSeverity != "" && !validSeverity(r.MinSeverity) {
			add("%s.min_severity: %q is not a severity; use info, low, medium, high or critical", path, r.MinSeverity)
		}
	}
	checkRefs("alerts.default_sinks", c.DefaultSinks)
	o := c.Outbox
	switch {
	case o.File != "" && len(o.Brokers) > 0:
		add("alerts.outbox: both file and brokers are set; choose the Kafka topic (brokers, topic) or a file")
	case o.File == "" && len(o.Brokers) > 0 && o.Topic == "":
		add("alerts.outbox.topic: empty; name the Kafka outbox topic, e.g. tokenwatch.alerts")
	}
	if o.WriteTimeout <= 0 {
		add("alerts.outbox.write_timeout: %s must be positive; the default is 10s", o.WriteTimeout)
	}
	r := c.Retry
	if r.InitialBackoff <= 0 || r.MaxBackoff < r.InitialBackoff {
		add("alerts.retry: initial_backoff (%s) must be positive and not above max_backoff (%s)", r.InitialBackoff, r.MaxBackoff)
	}
	if r.Jitter < 0 || r.Jitter > 1 {
		add("alerts.retry.jitter: %v must be within [0, 1]", r.Jitter)
	}
	if r.MaxAttempts < 1 {
		add("alerts.retry.max_attempts: %d must be at least 1", r.MaxAttempts)
	}
	if r.MaxAge <= 0 {
		add("alerts.retry.max_age: %s must be positive, e.g. 24h", r.MaxAge)
	}
	if r.MaxRetryAfter <= 0 {
		add("alerts.retry.max_retry_after: %s must be positive, e.g. 15m", r.MaxRetryAfter)
	}
	if c.CircuitBreaker.Failures < 1 {
		add("alerts.circuit_breaker.failures: %d must be at least 1", c.CircuitBreaker.Failures)
	}
	if c.CircuitBreaker.Cooldown <= 0 {
		add("alerts.circuit_breaker.cooldown: %s must be positive, e.g. 30s", c.CircuitBreaker.Cooldown)
	}
	if c.Dispatcher.Concurrency < 1 {
		add("alerts.dispatcher.concurrency: %d must be at least 1", c.Dispatcher.Concurrency)
	}
	if c.Dispatcher.CommitInterval <= 0 {
		add("alerts.dispatcher.commit_interval: %s must be positive, e.g. 200ms", c.Dispatcher.CommitInterval)
	}
	if c.Dispatcher.SessionTimeout < time.Second {
		add("alerts.dispatcher.session_timeout: %s is too short; use at least 1s (brokers allow 6s by default), e.g. 10s", c.Dispatcher.SessionTimeout)
	}
	if c.Dispatcher.DrainTimeout < 0 {
		add("alerts.dispatcher.drain_timeout: %s is negative; use 0 to stop at once or a duration like 10s", c.Dispatcher.DrainTimeout)
	}
	if len(o.Brokers) > 0 && c.Dispatcher.Group == "" {
		add("alerts.dispatcher.group: empty; name the dispatcher's consumer group")
	}
	if needKey {
		if _, err := c.sealingKey(os.Getenv); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sealingKey returns the 32-byte sealing key from the environment or the config.
func (c Config) sealingKey(getenv func(string) string) ([]byte, error) {
	s := c.SealingKey
	field := "alerts.sealing_key"
	if v := getenv(SealingKeyEnv); v != "" {
		s, field = v, SealingKeyEnv
	}
	if s == "" {
		return nil, fmt.Errorf("alerts.sealing_key: empty but an rfc7009 sink is configured; set it (or %s) to 32 random bytes in base64, e.g. `openssl rand -base64 32`", SealingKeyEnv)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(strings.TrimSpace(s)); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("%s: decodes to %d bytes; AES-256 needs exactly 32 (`openssl rand -base64 32`)", field, len(k))
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("%s: not valid base64; set it to 32 random bytes in base64 (`openssl rand -base64 32`)", field)
}

var (
	templateNames = []string{"raw", "splunk_soar", "xsoar", "slack"}
	ssfEvents     = []string{"session-revoked", "credential-change", "credential-compromise"}
)

func validateSink(path string, s SinkConfig) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := checkEndpoint(s.URL, s.AllowInsecureHTTP); err != nil {
		add("%s.url: %v", path, err)
	}
	if s.Timeout < 0 {
		add("%s.timeout: %s is negative; the default is 10s", path, s.Timeout)
	}
	switch s.Type {
	case SinkWebhook:
		for j, sec := range s.Secrets {
			if _, err := decodeSecret(sec); err != nil {
				add("%s.secrets[%d]: %v", path, j, err)
			}
		}
		if s.TemplateFile != "" {
			if _, err := os.Stat(s.TemplateFile); err != nil {
				add("%s.template_file: %q cannot be read (%v); point it to a Go text/template file or use template: raw", path, s.TemplateFile, err)
			}
		} else if !slices.Contains(templateNames, s.Template) {
			add("%s.template: %q is not a built-in template; use one of %s or template_file", path, s.Template, strings.Join(templateNames, ", "))
		}
	case SinkRFC7009:
		if s.Issuer == "" && !s.MatchAnyIssuer {
			add("%s.issuer: empty; set the issuer whose tokens this endpoint revokes, or match_any_issuer: true", path)
		}
		if s.ClientID == "" {
			add("%s.client_id: empty; set the OAuth client registered at the issuer", path)
		}
		if s.AuthMethod != "client_secret_basic" && s.AuthMethod != "client_secret_post" {
			add("%s.auth_method: %q is not supported; use client_secret_basic or client_secret_post", path, s.AuthMethod)
		}
		if s.TokenTypeHint != "" && s.TokenTypeHint != "access_token" && s.TokenTypeHint != "refresh_token" {
			add("%s.token_type_hint: %q is not access_token or refresh_token; use one of them or leave it empty", path, s.TokenTypeHint)
		}
	case SinkSSF:
		if s.SETIssuer == "" {
			add("%s.set_issuer: empty; set the iss of the Security Event Tokens (tokenwatch's transmitter id)", path)
		}
		if len(s.Audience) == 0 {
			add("%s.audience: empty; set the receiver's audience", path)
		}
		if s.Alg != "ES256" && s.Alg != "RS256" {
			add("%s.alg: %q is not supported; use ES256 or RS256", path, s.Alg)
		}
		if _, err := loadSigningKey(s); err != nil {
			add("%s: %v", path, err)
		}
		for j, e := range s.Events {
			if !slices.Contains(ssfEvents, e) {
				add("%s.events[%d]: %q is not supported; use %s", path, j, e, strings.Join(ssfEvents, ", "))
			}
		}
		if s.SubjectFormat != "iss_sub" && s.SubjectFormat != "jwt_id" && s.SubjectFormat != "complex" {
			add("%s.subject_format: %q is not supported; use iss_sub, jwt_id or complex", path, s.SubjectFormat)
		}
	default:
		add("%s.type: %q is not a sink type; use webhook, rfc7009 or ssf", path, s.Type)
	}
	return errors.Join(errs...)
}

// checkEndpoint refuses anything but https, except http to a loopback host or
// when allowInsecure is set.
func checkEndpoint(raw string, allowInsecure bool) error {
	if raw == "" {
		return errors.New("empty; set the endpoint URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q does not parse: %v", raw, err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host; use an absolute https:// URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowInsecure || isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q is plain http to a non-loopback host; use https or set allow_insecure_http: true", raw)
	}
	return fmt.Errorf("%q: scheme %q is not http or https", raw, u.Scheme)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
