package store

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read golden %s (run with -update to create): %v", p, err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the rendered script; run go test ./store -run %s -update and review the diff", p, t.Name())
	}
}

func clusterConfig() Config {
	c := DefaultConfig()
	c.Cluster = "tw_cluster"
	return c
}

func TestScriptGolden(t *testing.T) {
	for name, cfg := range map[string]Config{
		"script_single.sql":  DefaultConfig(),
		"script_cluster.sql": clusterConfig(),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Script(cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, s)
		})
	}
}

func TestMigrationsRender(t *testing.T) {
	tests := map[string]struct {
		cfg      Config
		want     []string
		wantNone []string
	}{
		"single": {
			cfg:      DefaultConfig(),
			want:     []string{"ENGINE = ReplacingMergeTree\n", "ENGINE = ReplacingMergeTree(version)", "TTL toDateTime(event_time) + INTERVAL 90 DAY", "CREATE TABLE IF NOT EXISTS tokenwatch.token_events\n"},
			wantNone: []string{"ON CLUSTER", "Replicated", "Distributed", "_local", "{{"},
		},
		"cluster": {
			cfg: clusterConfig(),
			want: []string{
				"CREATE TABLE IF NOT EXISTS tokenwatch.token_events_local ON CLUSTER tw_cluster",
				"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tokenwatch/alerts_local', '{replica}', version)",
				"ENGINE = Distributed(tw_cluster, tokenwatch, token_events_local, cityHash64(fingerprint))",
				"FROM tokenwatch.findings_local",
			},
			wantNone: []string{"{{"},
		},
		"no ttl": {
			cfg:      func() Config { c := DefaultConfig(); c.Retention = Retention{}; return c }(),
			wantNone: []string{"TTL toDateTime"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ms, err := Migrations(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) < 6 {
				t.Fatalf("got %d migrations, want at least 6", len(ms))
			}
			var all strings.Builder
			for i, m := range ms {
				if m.Version != i+1 || m.Name == "" || len(m.Checksum) != 64 {
					t.Errorf("migration %d: version %d name %q checksum %q", i, m.Version, m.Name, m.Checksum)
				}
				for _, s := range m.Statements {
					if strings.HasSuffix(s, ";") || strings.TrimSpace(s) == "" {
						t.Errorf("migration %d: bad statement %q", m.Version, s)
					}
					if !strings.Contains(s, "IF NOT EXISTS") {
						t.Errorf("migration %d: statement is not idempotent (no IF NOT EXISTS): %.80s", m.Version, s)
					}
					all.WriteString(s + "\n")
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(all.String(), w) {
					t.Errorf("rendered DDL lacks %q", w)
				}
			}
			for _, w := range tc.wantNone {
				if strings.Contains(all.String(), w) {
					t.Errorf("rendered DDL contains %q", w)
				}
			}
		})
	}
}

func TestRetentionStatements(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Retention.Deliveries = 0
	got := strings.Join(RetentionStatements(cfg), "\n")
	for _, w := range []string{
		"ALTER TABLE tokenwatch.token_events MODIFY TTL toDateTime(event_time) + INTERVAL 90 DAY",
		"ALTER TABLE tokenwatch.deliveries REMOVE TTL",
		"ALTER TABLE tokenwatch.uses_minutely MODIFY TTL toDateTime(minute) + INTERVAL 730 DAY",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("retention statements lack %q:\n%s", w, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	tests := map[string]struct {
		mut  func(*Config)
		want string
	}{
		"empty addr":      {func(c *Config) { c.Addr = []string{""} }, "clickhouse.addr"},
		"bad database":    {func(c *Config) { c.Database = "a-b; DROP" }, "clickhouse.database"},
		"bad cluster":     {func(c *Config) { c.Cluster = "x y" }, "clickhouse.cluster"},
		"negative ttl":    {func(c *Config) { c.Retention.Alerts = -1 }, "clickhouse.retention.alerts_days"},
		"zero batch":      {func(c *Config) { c.BatchRows = 0 }, "clickhouse.batch_rows"},
		"pending < batch": {func(c *Config) { c.MaxPendingRows = 10 }, "clickhouse.max_pending_rows"},
		"no flush":        {func(c *Config) { c.FlushInterval = 0 }, "clickhouse.flush_interval"},
		"retry order":     {func(c *Config) { c.RetryMax = time1ms }, "clickhouse.retry_initial"},
		"no path":         {func(c *Config) { c.Cluster = "c"; c.ReplicationPath = "" }, "clickhouse.replication_path"},
		"quoted path":     {func(c *Config) { c.Cluster = "c"; c.ReplicationPath = "/x'y" }, "clickhouse.replication_path"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

const time1ms = time.Millisecond
