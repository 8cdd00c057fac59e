package enrich_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/enrich"
	"github.com/tokenwatch/tokenwatch/enrich/geotest"
)

// writeDBs writes a City and an ASN database of nets in layout into a temp dir.
func writeDBs(t testing.TB, layout geotest.Layout, nets []geotest.Network) (city, asn string) {
	t.Helper()
	dir := t.TempDir()
	city, asn = filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteCity(city, layout, nets); err != nil {
		t.Fatal(err)
	}
	if err := geotest.WriteASN(asn, layout, nets); err != nil {
		t.Fatal(err)
	}
	return city, asn
}

func openT(t testing.TB, cfg enrich.Config, opts ...enrich.Option) *enrich.Enricher {
	t.Helper()
	e, err := enrich.Open(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestLookupLayouts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		layout     geotest.Layout
		wantRadius uint16
	}{
		{"geolite2", geotest.GeoLite2, 10},
		{"dbip-lite", geotest.DBIPLite, 0},
		{"ip-location-db", geotest.IPLocationDB, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			city, asn := writeDBs(t, tc.layout, geotest.World)
			e := openT(t, enrich.Config{CityDB: city, ASNDB: asn, CacheSize: 100})
			g := e.Lookup(netip.MustParseAddr("81.2.69.142"))
			want := tokenwatch.Geo{ASN: 2856, ASOrg: "British Telecommunications PLC", Country: "GB", Continent: "EU",
				City: "London", Lat: 51.5074, Lon: -0.1278, RadiusKm: tc.wantRadius, HasLocation: true}
			if tc.layout == geotest.IPLocationDB { // float32 in that layout
				want.Lat, want.Lon = g.Lat, g.Lon
				if d := g.Lat - 51.5074; d > 1e-4 || d < -1e-4 {
					t.Errorf("lat = %v, want ≈ 51.5074", g.Lat)
				}
			}
			if g != want {
				t.Errorf("Lookup = %+v\nwant     %+v", g, want)
			}
			// IPv6 and IPv4-mapped IPv6 forms.
			if g := e.Lookup(netip.MustParseAddr("2a02:8100:1234::1")); g.Country != "DE" || g.ASN != 3209 {
				t.Errorf("IPv6 lookup = %+v", g)
			}
			if g := e.Lookup(netip.MustParseAddr("::ffff:1.128.0.1")); g.City != "Sydney" || g.Continent != "OC" {
				t.Errorf("mapped lookup = %+v", g)
			}
			if g := e.Lookup(netip.MustParseAddr("8.8.8.8")); g != (tokenwatch.Geo{}) {
				t.Errorf("unknown address = %+v, want zero", g)
			}
		})
	}
}

func TestLabels(t *testing.T) {
	f := func(ip, want string) {
		t.Helper()
		if got := enrich.Label(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Label(%s) = %q, want %q", ip, got, want)
		}
	}
	f("10.1.2.3", enrich.LabelPrivate)
	f("172.20.0.1", enrich.LabelPrivate)
	f("192.168.1.1", enrich.LabelPrivate)
	f("fd00::1", enrich.LabelPrivate)
	f("127.0.0.1", enrich.LabelLoopback)
	f("::1", enrich.LabelLoopback)
	f("::ffff:127.0.0.1", enrich.LabelLoopback)
	f("100.64.0.1", enrich.LabelCGNAT)
	f("100.127.255.254", enrich.LabelCGNAT)
	f("192.0.2.10", enrich.LabelDocumentation)
	f("198.51.100.7", enrich.LabelDocumentation)
	f("203.0.113.99", enrich.LabelDocumentation)
	f("2001:db8::5", enrich.LabelDocumentation)
	f("169.254.1.1", enrich.LabelLinkLocal)
	f("fe80::1", enrich.LabelLinkLocal)
	f("224.0.0.1", enrich.LabelMulticast)
	f("ff02::1", enrich.LabelMulticast)
	f("0.0.0.0", enrich.LabelUnspecified)
	f("::", enrich.LabelUnspecified)
	f("198.18.0.1", enrich.LabelReserved)
	f("250.1.1.1", enrich.LabelReserved)
	f("81.2.69.142", "")
	f("2a02:8100::1", "")
	f("100.63.255.255", "")
}

func TestLabelledAddressesAreNotLookedUp(t *testing.T) {
	// A database that claims 10.0.0.0/8 must not be consulted for it.
	nets := []geotest.Network{{CIDR: "11.0.0.0/8", Country: "US", Continent: "NA", City: "X", Lat: 1, Lon: 1, ASN: 1, ASOrg: "one"}}
	city, asn := writeDBs(t, geotest.GeoLite2, nets)
	e := openT(t, enrich.Config{CityDB: city, ASNDB: asn})
	if g := e.Lookup(netip.MustParseAddr("10.0.0.1")); g != (tokenwatch.Geo{Label: "private"}) {
		t.Errorf("got %+v", g)
	}
}

func TestMissingDatabaseDegrades(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dir := t.TempDir()
	e := openT(t, enrich.Config{CityDB: filepath.Join(dir, "nope.mmdb"), ASNDB: filepath.Join(dir, "also-nope.mmdb")}, enrich.WithLogger(log))
	if g := e.Lookup(netip.MustParseAddr("81.2.69.142")); g != (tokenwatch.Geo{}) {
		t.Errorf("lookup without databases = %+v, want zero", g)
	}
	if n := strings.Count(logs.String(), "GeoIP database unavailable"); n != 2 {
		t.Errorf("want one warning per missing database, got %d:\n%s", n, logs.String())
	}
	// A garbage file is the same: a warning, no crash.
	bad := filepath.Join(dir, "bad.mmdb")
	os.WriteFile(bad, []byte("not a database"), 0o644)
	e2 := openT(t, enrich.Config{CityDB: bad}, enrich.WithLogger(log))
	_ = e2.Lookup(netip.MustParseAddr("81.2.69.142"))
}

func TestWrongDatabaseTypeWarnsOnce(t *testing.T) {
	var logs bytes.Buffer
	city, asn := writeDBs(t, geotest.GeoLite2, geotest.World)
	// Swapped on purpose.
	e := openT(t, enrich.Config{CityDB: asn, ASNDB: city, CacheSize: 0}, enrich.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	for range 3 {
		e.Lookup(netip.MustParseAddr("81.2.69.142"))
	}
	if n := strings.Count(logs.String(), "wrong type"); n != 2 {
		t.Errorf("want one warning per misconfigured database, got %d:\n%s", n, logs.String())
	}
}

func TestReloadOnChange(t *testing.T) {
	city, asn := writeDBs(t, geotest.GeoLite2, geotest.World)
	e := openT(t, enrich.Config{CityDB: city, ASNDB: asn, CacheSize: 1000})
	ip := netip.MustParseAddr("81.2.69.142")
	if g := e.Lookup(ip); g.City != "London" {
		t.Fatalf("before reload: %+v", g)
	}
	moved := []geotest.Network{{CIDR: "81.2.69.0/24", Country: "FR", Continent: "EU", City: "Paris", Lat: 48.8566, Lon: 2.3522, RadiusKm: 5, ASN: 3215, ASOrg: "Orange S.A."}}
	if err := geotest.WriteCity(city, geotest.GeoLite2, moved); err != nil {
		t.Fatal(err)
	}
	// Force a different modification time even on coarse-grained file systems.
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(city, later, later)
	e.Reload(slog.Default())
	if g := e.Lookup(ip); g.City != "Paris" || g.ASN != 2856 {
		t.Errorf("after reload: %+v (want Paris from the new city db, AS2856 from the unchanged asn db)", g)
	}
}

func TestReloadLoopPicksUpLateDatabase(t *testing.T) {
	dir := t.TempDir()
	city := filepath.Join(dir, "city.mmdb")
	e := openT(t, enrich.Config{CityDB: city, ReloadInterval: 10 * time.Millisecond, CacheSize: 0}, enrich.WithLogger(slog.New(slog.DiscardHandler)))
	ip := netip.MustParseAddr("1.128.0.1")
	if g := e.Lookup(ip); g.City != "" {
		t.Fatalf("no db yet: %+v", g)
	}
	if err := geotest.WriteCity(city, geotest.GeoLite2, geotest.World); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.Lookup(ip).City != "Sydney" {
		if time.Now().After(deadline) {
			t.Fatal("database written after start was never loaded")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCacheIsBounded(t *testing.T) {
	city, asn := writeDBs(t, geotest.GeoLite2, geotest.World)
	e := openT(t, enrich.Config{CityDB: city, ASNDB: asn, CacheSize: 64})
	base := netip.MustParseAddr("91.64.0.0")
	ip := base
	for range 10_000 {
		ip = ip.Next()
		if g := e.Lookup(ip); g.City != "Berlin" {
			t.Fatalf("%s: %+v", ip, g)
		}
	}
	if n := enrich.CacheLen(e); n > 64 {
		t.Errorf("cache holds %d entries, bound is 64", n)
	}
}

func TestProcessFillsUses(t *testing.T) {
	city, asn := writeDBs(t, geotest.GeoLite2, geotest.World)
	e := openT(t, enrich.Config{CityDB: city, ASNDB: asn, CacheSize: 100})
	b := &tokenwatch.Batch{Uses: []tokenwatch.TokenUse{
		{IP: netip.MustParseAddr("24.0.1.2")},
		{IP: netip.MustParseAddr("10.0.0.1")},
		{}, // no IP: untouched
	}}
	if err := e.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if g := b.Uses[0].Geo; g.City != "New York" || g.ASN != 7922 || g.Continent != "NA" {
		t.Errorf("use 0: %+v", g)
	}
	if g := b.Uses[1].Geo; g.Label != "private" {
		t.Errorf("use 1: %+v", g)
	}
	if g := b.Uses[2].Geo; g != (tokenwatch.Geo{}) {
		t.Errorf("use 2: %+v", g)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  enrich.Config
		want string
	}{
		{"default", enrich.DefaultConfig(), ""},
		{"missing city", enrich.Config{CityDB: filepath.Join(dir, "x.mmdb")}, "enrich.city_db: file"},
		{"missing asn", enrich.Config{ASNDB: filepath.Join(dir, "y.mmdb")}, "enrich.asn_db: file"},
		{"negative cache", enrich.Config{CacheSize: -1}, "enrich.cache_size"},
		{"negative reload", enrich.Config{ReloadInterval: -time.Second}, "enrich.reload_interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func BenchmarkLookupCached(b *testing.B) {
	city, asn := writeDBs(b, geotest.GeoLite2, geotest.World)
	e := openT(b, enrich.Config{CityDB: city, ASNDB: asn, CacheSize: 100_000})
	ips := make([]netip.Addr, 1024)
	ip := netip.MustParseAddr("91.64.0.0")
	for i := range ips {
		ip = ip.Next()
		ips[i] = ip
		e.Lookup(ip)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Lookup(ips[i&1023])
	}
}

func BenchmarkLookupUncached(b *testing.B) {
	city, asn := writeDBs(b, geotest.GeoLite2, geotest.World)
	e := openT(b, enrich.Config{CityDB: city, ASNDB: asn, CacheSize: 0})
	ip := netip.MustParseAddr("91.64.1.1")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Lookup(ip)
	}
}

func ExampleEnricher_Lookup() {
	dir, _ := os.MkdirTemp("", "geo")
	defer os.RemoveAll(dir)
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	geotest.WriteCity(city, geotest.GeoLite2, geotest.World)
	geotest.WriteASN(asn, geotest.GeoLite2, geotest.World)

	e, _ := enrich.Open(enrich.Config{CityDB: city, ASNDB: asn, CacheSize: 1000})
	defer e.Close()
	g := e.Lookup(netip.MustParseAddr("1.128.7.7"))
	fmt.Println(g.City, g.Country, g.Continent, g.ASN, g.ASOrg, g.RadiusKm)
	fmt.Println(e.Lookup(netip.MustParseAddr("100.64.3.4")).Label)
	// Output:
	// Sydney AU OC 1221 Telstra Corporation Ltd 20
	// cgnat
}

// Lookups running while the file is replaced and reloaded never see a torn or
// unmapped database (run with -race).
func TestConcurrentLookupsDuringReload(t *testing.T) {
	city, asn := writeDBs(t, geotest.GeoLite2, geotest.World)
	e := openT(t, enrich.Config{CityDB: city, ASNDB: asn, CacheSize: 0}, enrich.WithLogger(slog.New(slog.DiscardHandler)))
	done := make(chan struct{})
	errs := make(chan string, 4)
	for w := range 4 {
		go func() {
			ip := netip.MustParseAddr(fmt.Sprintf("91.64.%d.1", w))
			for {
				select {
				case <-done:
					errs <- ""
					return
				default:
				}
				if g := e.Lookup(ip); g.Country != "DE" {
					errs <- fmt.Sprintf("lookup during reload = %+v", g)
					return
				}
			}
		}()
	}
	for i := range 20 {
		if err := geotest.WriteCity(city, geotest.GeoLite2, geotest.World); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Duration(i+1) * time.Second)
		os.Chtimes(city, later, later)
		e.Reload(slog.New(slog.DiscardHandler))
	}
	close(done)
	for range 4 {
		if msg := <-errs; msg != "" {
			t.Error(msg)
		}
	}
}
