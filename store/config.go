package store

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Config is the `clickhouse:` section of the tokenwatch configuration.
type Config struct {
	// Addr lists the native-protocol endpoints (host:port); the client
	// spreads connections over them and fails over. Empty (the default)
	// disables the store: `tokenwatch run` then writes nothing to ClickHouse.
	Addr []string `yaml:"addr"`
	// Database holds every tokenwatch table.
	Database string `yaml:"database"`
	Username string `yaml:"username"`
	// Password may be given as ${ENV} in the YAML file.
	Password string `yaml:"password"`
	// Secure enables TLS to the server.
	Secure bool `yaml:"secure"`
	// Cluster, when set, makes migrations emit ON CLUSTER DDL with
	// Replicated*MergeTree local tables and Distributed tables over them.
	Cluster string `yaml:"cluster"`
	// ReplicationPath is the Keeper path prefix of replicated tables; the
	// table name is appended. ClickHouse expands {shard} and {replica}.
	ReplicationPath string `yaml:"replication_path"`
	// Migrate applies pending migrations when `tokenwatch run` starts.
	Migrate bool `yaml:"migrate"`
	// Retention is how long rows are kept, per table (TTL).
	Retention Retention `yaml:"retention"`

	// BatchRows is the most rows sent in one INSERT; larger batches are split.
	BatchRows int `yaml:"batch_rows"`
	// MaxPendingRows bounds the rows held in memory waiting for ClickHouse,
	// over all concurrent batches and buffered writes; when reached, Process
	// and the Add methods block, which slows ingest down (backpressure).
	MaxPendingRows int `yaml:"max_pending_rows"`
	// FlushInterval is how often rows buffered by the Add methods (deliveries)
	// are flushed when fewer than BatchRows are waiting. Process does not wait
	// for it: it flushes its own batch before returning.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// RetryInitial and RetryMax bound the exponential backoff (with full
	// jitter) between attempts of a failed INSERT.
	RetryInitial time.Duration `yaml:"retry_initial"`
	RetryMax     time.Duration `yaml:"retry_max"`
	// DialTimeout and WriteTimeout are per attempt.
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// Retention holds the TTL of each table in days; 0 keeps rows forever.
type Retention struct {
	TokenEvents int `yaml:"token_events_days"`
	Findings    int `yaml:"findings_days"`
	Alerts      int `yaml:"alerts_days"`
	Revocations int `yaml:"revocations_days"`
	Deliveries  int `yaml:"deliveries_days"`
	// Aggregates covers the tables behind the dashboard materialized views.
	Aggregates int `yaml:"aggregates_days"`
}

// days returns the retention of the named TTL group.
func (r Retention) days(group string) int {
	switch group {
	case "token_events":
		return r.TokenEvents
	case "findings":
		return r.Findings
	case "alerts":
		return r.Alerts
	case "revocations":
		return r.Revocations
	case "deliveries":
		return r.Deliveries
	case "aggregates":
		return r.Aggregates
	}
	panic("BUG: unknown retention group " + group)
}

// Enabled reports whether a ClickHouse server is configured.
func (c Config) Enabled() bool { return len(c.Addr) > 0 }

// DefaultConfig returns the defaults documented in docs/store.md.
func DefaultConfig() Config {
	return Config{
		Database:        "tokenwatch",
		Username:        "default",
		ReplicationPath: "/clickhouse/tables/{shard}",
		Migrate:         true,
		Retention: Retention{
			TokenEvents: 90,
			Findings:    365,
			Alerts:      730,
			Revocations: 730,
			Deliveries:  90,
			Aggregates:  730,
		},
		BatchRows:      50_000,
		MaxPendingRows: 500_000,
		FlushInterval:  time.Second,
		RetryInitial:   100 * time.Millisecond,
		RetryMax:       10 * time.Second,
		DialTimeout:    5 * time.Second,
		WriteTimeout:   30 * time.Second,
	}
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports the first invalid setting, naming its YAML path and the fix.
func (c Config) Validate() error {
	for _, a := range c.Addr {
		if a == "" {
			return fmt.Errorf("clickhouse.addr: empty entry; give host:port of the native protocol (port 9000, or 9440 with TLS)")
		}
	}
	if !identRE.MatchString(c.Database) {
		return fmt.Errorf("clickhouse.database: %q is not a plain identifier; use letters, digits and _ (e.g. tokenwatch)", c.Database)
	}
	if c.Cluster != "" && !identRE.MatchString(c.Cluster) {
		return fmt.Errorf("clickhouse.cluster: %q is not a plain identifier; use the cluster name from remote_servers, or leave it empty for a single node", c.Cluster)
	}
	if c.Cluster != "" && (c.ReplicationPath == "" || strings.ContainsAny(c.ReplicationPath, "'\\")) {
		return fmt.Errorf("clickhouse.replication_path: %q with a cluster set; use a Keeper path without quotes, e.g. /clickhouse/tables/{shard}", c.ReplicationPath)
	}
	for _, r := range []struct {
		name string
		v    int
	}{
		{"token_events_days", c.Retention.TokenEvents}, {"findings_days", c.Retention.Findings},
		{"alerts_days", c.Retention.Alerts}, {"revocations_days", c.Retention.Revocations},
		{"deliveries_days", c.Retention.Deliveries}, {"aggregates_days", c.Retention.Aggregates},
	} {
		if r.v < 0 {
			return fmt.Errorf("clickhouse.retention.%s: %d is negative; use a number of days, or 0 to keep rows forever", r.name, r.v)
		}
	}
	if c.BatchRows <= 0 {
		return fmt.Errorf("clickhouse.batch_rows: %d; use a positive row count (default 50000)", c.BatchRows)
	}
	if c.MaxPendingRows < c.BatchRows {
		return fmt.Errorf("clickhouse.max_pending_rows: %d is below batch_rows %d; raise it to at least batch_rows (default 500000)", c.MaxPendingRows, c.BatchRows)
	}
	if c.FlushInterval <= 0 {
		return fmt.Errorf("clickhouse.flush_interval: %v; use a positive duration such as 1s", c.FlushInterval)
	}
	if c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial {
		return fmt.Errorf("clickhouse.retry_initial/retry_max: %v/%v; use 0 < retry_initial <= retry_max (defaults 100ms and 10s)", c.RetryInitial, c.RetryMax)
	}
	if c.DialTimeout <= 0 || c.WriteTimeout <= 0 {
		return fmt.Errorf("clickhouse.dial_timeout/write_timeout: %v/%v; use positive durations (defaults 5s and 30s)", c.DialTimeout, c.WriteTimeout)
	}
	return nil
}
