package anomaly

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
)

func TestPinnedBalancer(t *testing.T) {
	var b pinnedBalancer
	parts := []int{0, 1, 2, 3}
	m := kafka.Message{Key: []byte("x"), Headers: []kafka.Header{{Key: partitionHeader, Value: []byte("2")}}}
	if p := b.Balance(m, parts...); p != 2 {
		t.Errorf("pinned message went to %d", p)
	}
	for _, n := range []int{1, 3, 4, 12} {
		parts := parts[:0:0]
		for i := range n {
			parts = append(parts, i)
		}
		var h kafka.Hash
		for i := range 200 {
			k := benchFP(i)
			want := h.Balance(kafka.Message{Key: k.AppendHex(nil)}, parts...)
			if p := PartitionOf(k, n); p != want {
				t.Errorf("key %s, %d partitions: kafka.Hash %d, PartitionOf %d", k, n, want, p)
			}
			if p := b.Balance(kafka.Message{Key: k.AppendHex(nil)}, parts...); p != want {
				t.Errorf("key %s: pinnedBalancer %d, kafka.Hash %d", k, p, want)
			}
		}
	}
	// A pin to a partition that does not exist falls back to the key hash.
	m.Headers[0].Value = []byte("9")
	if p := b.Balance(m, parts...); p < 0 || p > 3 {
		t.Errorf("bad pin gave partition %d", p)
	}
}

func TestRevocationCodec(t *testing.T) {
	for _, r := range []tokenwatch.Revocation{
		{Fingerprint: fp(1), Time: t0, Reason: "logout", Origin: tokenwatch.Origin{Source: "revocations", Partition: 2, Offset: 77}},
		{JTI: "j-1", Issuer: "https://idp.example.com", Time: t0.Add(1500 * time.Millisecond)},
	} {
		var got tokenwatch.Revocation
		if err := DecodeRevocation(AppendRevocation(nil, &r), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip\n got %+v\nwant %+v", got, r)
		}
	}
	if err := DecodeRevocation([]byte{2}, &tokenwatch.Revocation{}); err == nil {
		t.Error("unknown version accepted")
	}
}

func FuzzDecodeRevocation(f *testing.F) {
	r := tokenwatch.Revocation{Fingerprint: fp(1), JTI: "j", Issuer: "i", Time: t0, Reason: "x"}
	f.Add(AppendRevocation(nil, &r))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r tokenwatch.Revocation
		if err := DecodeRevocation(data, &r); err != nil {
			return
		}
		var again tokenwatch.Revocation
		if err := DecodeRevocation(AppendRevocation(nil, &r), &again); err != nil || !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, r, again)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"shards", func(c *Config) { c.Shards = 3 }, "anomaly.shards"},
		{"max_tokens", func(c *Config) { c.MaxTokens = 0 }, "anomaly.max_tokens"},
		{"idle_ttl", func(c *Config) { c.IdleTTL = 0 }, "anomaly.idle_ttl"},
		{"clock_skew", func(c *Config) { c.ClockSkew = -time.Second }, "anomaly.clock_skew"},
		{"speed", func(c *Config) { c.ImpossibleTravel.MaxSpeedKmh = 0 }, "anomaly.impossible_travel.max_speed_kmh"},
		{"window", func(c *Config) { c.ConcurrentReplay.Window = 0 }, "anomaly.concurrent_replay.window"},
		{"leeway", func(c *Config) { c.ExpiredTokenAccepted.Leeway = -1 }, "anomaly.expired_token_accepted.leeway"},
		{"severity type", func(c *Config) { c.Severity = map[string]tokenwatch.Severity{"nope": "high"} }, "anomaly.severity"},
		{"severity value", func(c *Config) {
			c.Severity = map[string]tokenwatch.Severity{tokenwatch.AlertTokenLeak: "urgent"}
		}, "anomaly.severity.token_leak"},
		{"revocations", func(c *Config) { c.PostRevocationUse.MaxRevocations = 0 }, "anomaly.post_revocation_use.max_revocations"},
		{"scale_out", func(c *Config) { c.ScaleOut.Brokers = []string{"127.0.0.1:9092"}; c.ScaleOut.GroupID = "" }, "anomaly.scale_out.group_id"},
		{"changelog", func(c *Config) {
			c.ScaleOut.Brokers = []string{"127.0.0.1:9092"}
			c.ScaleOut.ChangelogTopic = c.ScaleOut.UsesTopic
		}, "anomaly.scale_out.changelog_topic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.want)
			}
			if _, err := New(c); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
	// Severity overrides apply.
	e := newTestEngine(t, func(c *Config) {
		c.Severity = map[string]tokenwatch.Severity{tokenwatch.AlertImpossibleTravel: tokenwatch.SeverityCritical}
	})
	got := run(e, use(1, 0, frankfurt), use(1, 11*time.Minute, sydney))
	if len(got) != 1 || got[0].Severity != tokenwatch.SeverityCritical {
		t.Errorf("severity override not applied: %+v", got)
	}
}

func TestClassifyUA(t *testing.T) {
	tests := map[string]uaFamily{
		uaChrome: famChrome,
		uaSafari: famSafari,
		uaCurl:   famCurl,
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86": famEdge,
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0":                                                            famFirefox,
		"okhttp/4.12.0":                          famOkHTTP,
		"python-requests/2.32.3":                 famPythonRequests,
		"Go-http-client/2.0":                     famGo,
		"MyApp/1.2 CFNetwork/1568 Darwin/24.1.0": famCFNetwork,
		"PostmanRuntime/7.43.0":                  famPostman,
		"axios/1.7.9":                            famNode,
		"":                                       famUnknown,
		"-":                                      famUnknown,
		"SomethingElse/1.0":                      famOther,
	}
	for ua, want := range tests {
		if got := classifyUA(ua); got != want {
			t.Errorf("classifyUA(%q) = %v, want %v", ua, got, want)
		}
	}
}

func TestHaversine(t *testing.T) {
	// London - New York is about 5,570 km; Frankfurt - Sydney about 16,480 km.
	for _, tc := range []struct {
		a, b     place
		min, max float64
	}{{london, newYork, 5560, 5580}, {frankfurt, sydney, 16470, 16490}, {strasbourg, kehl, 4, 6}} {
		d := haversineKm(tc.a.lat, tc.a.lon, tc.b.lat, tc.b.lon)
		if d < tc.min || d > tc.max {
			t.Errorf("%s - %s = %.0f km, want %v..%v", tc.a.city, tc.b.city, d, tc.min, tc.max)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for ms, want := range map[int64]string{
		500: "under a second", 1000: "1 second", 40_000: "40 seconds", 60_000: "1 minute", 660_000: "11 minutes",
		3_600_000: "1 hour", 29_100_000: "8 hours 5 minutes", 3 * 86_400_000: "3 days",
	} {
		if got := humanDuration(ms); got != want {
			t.Errorf("humanDuration(%d) = %q, want %q", ms, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 16453: "16,453", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := commaInt(n); got != want {
			t.Errorf("commaInt(%d) = %q, want %q", n, got, want)
		}
	}
}
