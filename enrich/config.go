package enrich

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Config is the `enrich` section of the configuration file.
type Config struct {
	// CityDB is a City database: GeoLite2-City / GeoIP2-City, DB-IP City Lite, or
	// an ip-location-db *-city-mmdb file. Empty: no location data.
	CityDB string `yaml:"city_db"`
	// ASNDB is an ASN database: GeoLite2-ASN, DB-IP ASN Lite or ip-location-db
	// asn-mmdb. Empty: no ASN data.
	ASNDB string `yaml:"asn_db"`
	// CacheSize bounds the number of addresses kept in the lookup cache.
	CacheSize int `yaml:"cache_size"`
	// ReloadInterval is how often the database files are checked for changes
	// (size or modification time); 0 disables reloading.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// DefaultConfig returns the defaults: no databases, a 100,000-address cache,
// files checked for changes every 30 seconds.
func DefaultConfig() Config {
	return Config{CacheSize: 100_000, ReloadInterval: 30 * time.Second}
}

// Validate reports every mistake in c, naming the YAML field and the fix. A
// database path that does not exist is an error here (a typo should be caught at
// start-up); a file that disappears later only degrades enrichment.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct{ key, path string }{{"enrich.city_db", c.CityDB}, {"enrich.asn_db", c.ASNDB}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: file %q not found; set it to a MaxMind-format .mmdb file or leave it empty", f.key, f.path))
		}
	}
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("enrich.cache_size: %d is negative; use 0 to disable the cache or a positive size such as 100000", c.CacheSize))
	}
	if c.ReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("enrich.reload_interval: %s is negative; use 0 to disable reloading or a duration such as 30s", c.ReloadInterval))
	}
	return errors.Join(errs...)
}
