package anomaly

import (
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"runtime"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Config configures the anomaly engine (YAML section "anomaly"). Every
// threshold has a default chosen in DefaultConfig; docs/anomaly.md gives the
// rationale for each.
type Config struct {
	// Shards is the number of state shards, a power of two; 0 picks the next
	// power of two >= 4*GOMAXPROCS.
	Shards int `yaml:"shards"`
	// MaxTokens caps the number of tokens with state; the least recently used
	// token of a shard is evicted when the shard is full.
	MaxTokens int `yaml:"max_tokens"`
	// IdleTTL drops a token's state this long (event time) after its last use
	// when the token's expiry is unknown or later.
	IdleTTL time.Duration `yaml:"idle_ttl"`
	// ExpiryGrace keeps a token's state this long after its exp, so uses of an
	// expired token are still judged against its history.
	ExpiryGrace time.Duration `yaml:"expiry_grace"`
	// MaxLateness is how far (event time) one input stream may lag behind the
	// newest event seen: expired state is swept only once it has been expired
	// for this long at the newest event time, so uses arriving from a slower
	// stream (files read at their own pace, a lagging topic) still find their
	// token's history. Expiry is always judged at each use's own time as well.
	MaxLateness time.Duration `yaml:"max_lateness"`
	// ClockSkew is the allowance for clocks of different log sources: added to
	// the time between two uses for travel, and to revocation and leak times.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// IgnoreASNs are networks whose addresses are not client locations (CDN and
	// proxy edges when X-Forwarded-For is not trusted). Uses from them take part
	// in no travel, concurrency or leak-replay rule.
	IgnoreASNs []uint32 `yaml:"ignore_asns"`
	// MaxInternedStrings caps the display strings (city, user agent, service,
	// source) kept for evidence, over all shards. When full, older uses lose
	// those strings in evidence; detection is not affected.
	MaxInternedStrings int `yaml:"max_interned_strings"`
	// Severity is the severity of each alert type (DefaultSeverity unless
	// overridden; a type missing here keeps its default).
	Severity map[string]tokenwatch.Severity `yaml:"severity"`

	ImpossibleTravel     TravelConfig     `yaml:"impossible_travel"`
	ConcurrentReplay     ConcurrentConfig `yaml:"concurrent_replay"`
	LeakedTokenReplay    RuleConfig       `yaml:"leaked_token_replay"`
	PostRevocationUse    RevocationConfig `yaml:"post_revocation_use"`
	ExpiredTokenAccepted ExpiredConfig    `yaml:"expired_token_accepted"`
	AlgNoneAccepted      RuleConfig       `yaml:"alg_none_accepted"`
	TokenLeak            RuleConfig       `yaml:"token_leak"`

	// ScaleOut: the Kafka repartition topic and owner consumer group (off
	// while scale_out.brokers is empty).
	ScaleOut ScaleOutConfig `yaml:"scale_out"`
	// StateLog keeps a single process's state in a compacted Kafka topic so a
	// restart or a kill -9 does not forget recent uses (on by default when
	// ingest reads Kafka; unused with scale_out, whose owners keep their own).
	StateLog StateLogConfig `yaml:"state_log"`
}

// RuleConfig switches a rule without thresholds on or off.
type RuleConfig struct {
	Enabled bool `yaml:"enabled"`
}

// TravelConfig configures impossible_travel.
type TravelConfig struct {
	Enabled bool `yaml:"enabled"`
	// MaxSpeedKmh is the fastest plausible travel: an airliner's cruise speed.
	MaxSpeedKmh float64 `yaml:"max_speed_kmh"`
	// MinDistanceKm: moves shorter than this (after subtracting both accuracy
	// radii) are never travel; GeoIP error and in-country gateways live there.
	MinDistanceKm float64 `yaml:"min_distance_km"`
	// IgnoreSameCountry treats moves inside one country by the same client
	// software (user-agent family) as a corporate egress or VPN, not travel.
	IgnoreSameCountry bool `yaml:"ignore_same_country"`
}

// ConcurrentConfig configures concurrent_replay.
type ConcurrentConfig struct {
	Enabled bool `yaml:"enabled"`
	// Window: two uses closer than this in event time are concurrent.
	Window time.Duration `yaml:"window"`
	// MinDistanceKm: uses from different countries count only when this far
	// apart after the accuracy radii (a border metro area is one client).
	MinDistanceKm float64 `yaml:"min_distance_km"`
	// UserAgentFamilies: two different known client families (a browser and
	// curl) on two networks count even inside one country.
	UserAgentFamilies bool `yaml:"user_agent_families"`
}

// RevocationConfig configures post_revocation_use and the revocation table.
type RevocationConfig struct {
	Enabled bool `yaml:"enabled"`
	// MaxRevocations caps the revocation table (oldest dropped first).
	MaxRevocations int `yaml:"max_revocations"`
	// TTL drops a revocation this long after its time (event time of the
	// newest use seen); tokens outlive it rarely.
	TTL time.Duration `yaml:"ttl"`
}

// ExpiredConfig configures expired_token_accepted.
type ExpiredConfig struct {
	Enabled bool `yaml:"enabled"`
	// Leeway is the exp skew a resource server may legitimately allow.
	Leeway time.Duration `yaml:"leeway"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		MaxTokens:          1_000_000,
		IdleTTL:            24 * time.Hour,
		ExpiryGrace:        time.Hour,
		MaxLateness:        24 * time.Hour,
		ClockSkew:          10 * time.Second,
		IgnoreASNs:         []uint32{13335, 54113, 20940, 16625},
		MaxInternedStrings: 1 << 20,
		Severity:           maps.Clone(DefaultSeverity),
		ImpossibleTravel: TravelConfig{
			Enabled:           true,
			MaxSpeedKmh:       950,
			MinDistanceKm:     500,
			IgnoreSameCountry: true,
		},
		ConcurrentReplay: ConcurrentConfig{
			Enabled:           true,
			Window:            5 * time.Minute,
			MinDistanceKm:     100,
			UserAgentFamilies: true,
		},
		LeakedTokenReplay: RuleConfig{Enabled: true},
		PostRevocationUse: RevocationConfig{
			Enabled:        true,
			MaxRevocations: 1_000_000,
			TTL:            30 * 24 * time.Hour,
		},
		ExpiredTokenAccepted: ExpiredConfig{Enabled: true, Leeway: 60 * time.Second},
		AlgNoneAccepted:      RuleConfig{Enabled: true},
		TokenLeak:            RuleConfig{Enabled: true},
		ScaleOut:             DefaultScaleOutConfig(),
		StateLog:             DefaultStateLogConfig(),
	}
}

// DefaultSeverity is the severity of each alert type unless Config.Severity
// overrides it.
var DefaultSeverity = map[string]tokenwatch.Severity{
	tokenwatch.AlertTokenLeak:            tokenwatch.SeverityHigh,
	tokenwatch.AlertImpossibleTravel:     tokenwatch.SeverityHigh,
	tokenwatch.AlertConcurrentReplay:     tokenwatch.SeverityHigh,
	tokenwatch.AlertLeakedTokenReplay:    tokenwatch.SeverityCritical,
	tokenwatch.AlertPostRevocationUse:    tokenwatch.SeverityCritical,
	tokenwatch.AlertExpiredTokenAccepted: tokenwatch.SeverityHigh,
	tokenwatch.AlertAlgNoneAccepted:      tokenwatch.SeverityCritical,
}

// Validate reports the first invalid field, naming its YAML path and the fix.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Shards < 0 || (c.Shards > 0 && bits.OnesCount(uint(c.Shards)) != 1) || c.Shards > 1<<16 {
		bad("anomaly.shards: %d is not a power of two up to 65536; set 1, 2, 4, … or 0 for automatic", c.Shards)
	}
	if c.MaxTokens < 1 {
		bad("anomaly.max_tokens: %d must be at least 1; the default is 1000000 (about 300 MB)", c.MaxTokens)
	}
	if c.IdleTTL <= 0 {
		bad("anomaly.idle_ttl: %v must be positive, e.g. 24h", c.IdleTTL)
	}
	if c.ExpiryGrace < 0 {
		bad("anomaly.expiry_grace: %v must not be negative, e.g. 1h", c.ExpiryGrace)
	}
	if c.MaxLateness < 0 {
		bad("anomaly.max_lateness: %v must not be negative, e.g. 24h", c.MaxLateness)
	}
	if c.ClockSkew < 0 || c.ClockSkew > time.Hour {
		bad("anomaly.clock_skew: %v must be between 0 and 1h, e.g. 10s", c.ClockSkew)
	}
	if c.MaxInternedStrings < 0 {
		bad("anomaly.max_interned_strings: %d must not be negative; 0 keeps no display strings", c.MaxInternedStrings)
	}
	for typ, sev := range c.Severity {
		if _, ok := DefaultSeverity[typ]; !ok {
			bad("anomaly.severity: unknown alert type %q; use one of token_leak, impossible_travel, concurrent_replay, leaked_token_replay, post_revocation_use, expired_token_accepted, alg_none_accepted", typ)
		}
		switch sev {
		case tokenwatch.SeverityInfo, tokenwatch.SeverityLow, tokenwatch.SeverityMedium, tokenwatch.SeverityHigh, tokenwatch.SeverityCritical:
		default:
			bad("anomaly.severity.%s: unknown severity %q; use info, low, medium, high or critical", typ, sev)
		}
	}
	if t := c.ImpossibleTravel; t.Enabled {
		if t.MaxSpeedKmh <= 0 {
			bad("anomaly.impossible_travel.max_speed_kmh: %v must be positive, e.g. 950", t.MaxSpeedKmh)
		}
		if t.MinDistanceKm < 0 {
			bad("anomaly.impossible_travel.min_distance_km: %v must not be negative, e.g. 500", t.MinDistanceKm)
		}
	}
	if r := c.ConcurrentReplay; r.Enabled {
		if r.Window <= 0 {
			bad("anomaly.concurrent_replay.window: %v must be positive, e.g. 5m", r.Window)
		}
		if r.MinDistanceKm < 0 {
			bad("anomaly.concurrent_replay.min_distance_km: %v must not be negative, e.g. 100", r.MinDistanceKm)
		}
	}
	if r := c.PostRevocationUse; r.Enabled {
		if r.MaxRevocations < 1 {
			bad("anomaly.post_revocation_use.max_revocations: %d must be at least 1, e.g. 1000000", r.MaxRevocations)
		}
		if r.TTL <= 0 {
			bad("anomaly.post_revocation_use.ttl: %v must be positive, e.g. 720h", r.TTL)
		}
	}
	if r := c.ExpiredTokenAccepted; r.Enabled && (r.Leeway < 0 || r.Leeway > 24*time.Hour) {
		bad("anomaly.expired_token_accepted.leeway: %v must be between 0 and 24h, e.g. 60s", r.Leeway)
	}
	if err := c.StateLog.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.ScaleOut.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// shardCount resolves Shards.
func (c Config) shardCount() int {
	if c.Shards > 0 {
		return c.Shards
	}
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	return n
}

// severity returns the severity of an alert type.
func (c Config) severity(typ string) tokenwatch.Severity {
	if s, ok := c.Severity[typ]; ok {
		return s
	}
	return DefaultSeverity[typ]
}
