package parse_test

import (
	"fmt"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/ingest/parse"
)

func ExampleParser_Parse() {
	cfg := parse.DefaultConfig() // trusts X-Forwarded-For from private and loopback proxies
	p, err := parse.New(cfg)
	if err != nil {
		panic(err)
	}
	r := tokenwatch.Record{Raw: []byte(`10.0.0.5 - - [25/Nov/2026:08:14:06 +0000] "GET /api/orders?access_token=x HTTP/1.1" 200 612 "-" "curl/8.4.0" "203.0.113.9"`)}
	p.Parse(&r)
	f := r.Fields
	fmt.Println(f.Format, f.Time.UTC().Format("2006-01-02T15:04:05Z"), f.IP, f.Method, f.Path, f.Status, f.UserAgent)
	// Output: combined 2026-11-25T08:14:06Z 203.0.113.9 GET /api/orders 200 curl/8.4.0
}

func ExampleConfig_mapping() {
	cfg := parse.DefaultConfig()
	cfg.Fields.IP = "req.remote"        // a JSON key path (or a logfmt key)
	cfg.Fields.Time = "when"            // ...with its own layout:
	cfg.TimeLayout = "02.01.2006 15:04" // Go reference-time layout
	p, err := parse.New(cfg)
	if err != nil {
		panic(err)
	}
	r := tokenwatch.Record{Raw: []byte(`{"when":"25.11.2026 08:14","req":{"remote":"198.51.100.7:4431"}}`)}
	p.Parse(&r)
	fmt.Println(r.Fields.Time.UTC().Format("2006-01-02T15:04Z"), r.Fields.IP)
	// Output: 2026-11-25T08:14Z 198.51.100.7
}

func ExampleParseTime() {
	for _, s := range []string{"2026-11-25T09:14:06+01:00", "1795594446123", "25/Nov/2026:08:14:06 +0000"} {
		t, ok := parse.ParseTime([]byte(s), nil)
		fmt.Println(t.UTC(), ok)
	}
	// Output:
	// 2026-11-25 08:14:06 +0000 UTC true
	// 2026-11-25 08:14:06.123 +0000 UTC true
	// 2026-11-25 08:14:06 +0000 UTC true
}
