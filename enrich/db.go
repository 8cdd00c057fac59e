package enrich

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/oschwald/geoip2-golang"
	"github.com/oschwald/maxminddb-golang"
	"github.com/tokenwatch/tokenwatch"
)

// flatCity is the record layout of ip-location-db's *-city-mmdb files:
// country_code, state1, state2, city, postcode, latitude, longitude, timezone.
type flatCity struct {
	CountryCode string  `maxminddb:"country_code"`
	City        string  `maxminddb:"city"`
	Latitude    float64 `maxminddb:"latitude"`
	Longitude   float64 `maxminddb:"longitude"`
}

// database is one memory-mapped .mmdb file that can be swapped for a newer
// version of itself while lookups run. Lookups hold the read lock, so the old
// mapping is unmapped only once no lookup uses it.
type database struct {
	name string // "city" or "asn", the metric label
	path string
	log  *slog.Logger

	mu    sync.RWMutex
	geo   *geoip2.Reader    // layouts geoip2 knows (GeoLite2, GeoIP2, DB-IP)
	flat  *maxminddb.Reader // other layouts (ip-location-db)
	stamp fileStamp         // of the file currently loaded
	warn  sync.Once         // one warning for a lookup method the file does not support
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.Size(), fi.ModTime()}, nil
}

// openDB opens path. A missing or unreadable file is not an error for the
// caller: it logs one warning, sets the availability metric to 0, and returns a
// database that answers nothing until a reload finds a good file.
func openDB(name, path string, log *slog.Logger) *database {
	d := &database{name: name, path: path, log: log}
	if err := d.load(); err != nil {
		log.Warn("GeoIP database unavailable; enrichment continues without it", "db", name, "path", path, "err", err)
	}
	return d
}

// load (re)opens the file and swaps it in. On failure the loaded version, if
// any, stays in use.
func (d *database) load() error {
	st, err := stampOf(d.path)
	if err != nil {
		metricReloads.WithLabelValues(d.name, "error").Inc()
		d.setAvailable()
		return fmt.Errorf("stat %s: %w", d.path, err)
	}
	var geo *geoip2.Reader
	var flat *maxminddb.Reader
	geo, err = geoip2.Open(d.path)
	var unknown geoip2.UnknownDatabaseTypeError
	if errors.As(err, &unknown) {
		// geoip2 returns a reader even for a type it does not know; read
		// the file as the flat ip-location-db layout instead.
		if geo != nil {
			geo.Close()
			geo = nil
		}
		flat, err = maxminddb.Open(d.path)
	}
	if err != nil {
		metricReloads.WithLabelValues(d.name, "error").Inc()
		d.setAvailable()
		return fmt.Errorf("open %s database %s: %w", d.name, d.path, err)
	}
	d.mu.Lock()
	oldGeo, oldFlat := d.geo, d.flat
	d.geo, d.flat, d.stamp = geo, flat, st
	d.mu.Unlock()
	closeReaders(oldGeo, oldFlat)
	metricReloads.WithLabelValues(d.name, "ok").Inc()
	d.setAvailable()
	return nil
}

func closeReaders(g *geoip2.Reader, f *maxminddb.Reader) {
	if g != nil {
		g.Close()
	}
	if f != nil {
		f.Close()
	}
}

func (d *database) setAvailable() {
	d.mu.RLock()
	ok := d.geo != nil || d.flat != nil
	d.mu.RUnlock()
	v := 0.0
	if ok {
		v = 1
	}
	metricAvailable.WithLabelValues(d.name).Set(v)
}

// changed reports whether the file on disk differs from the loaded one.
func (d *database) changed() bool {
	st, err := stampOf(d.path)
	if err != nil {
		return false // keep serving the loaded version while the file is being replaced
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return st != d.stamp
}

func (d *database) close() {
	d.mu.Lock()
	g, f := d.geo, d.flat
	d.geo, d.flat = nil, nil
	d.mu.Unlock()
	closeReaders(g, f)
}

// lookupCity fills the location part of g. It reports whether the database had
// a record for ip.
func (d *database) lookupCity(ip net.IP, g *tokenwatch.Geo) (bool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	switch {
	case d.geo != nil:
		rec, err := d.geo.City(ip)
		if err != nil {
			return false, d.methodErr(err)
		}
		if rec.Country.IsoCode == "" && rec.City.GeoNameID == 0 && rec.Location.Latitude == 0 && rec.Location.Longitude == 0 {
			return false, nil
		}
		g.Country = rec.Country.IsoCode
		g.Continent = rec.Continent.Code
		g.City = rec.City.Names["en"]
		if rec.Location.Latitude != 0 || rec.Location.Longitude != 0 {
			g.Lat, g.Lon, g.HasLocation = rec.Location.Latitude, rec.Location.Longitude, true
		}
		g.RadiusKm = rec.Location.AccuracyRadius
		return true, nil
	case d.flat != nil:
		var rec flatCity
		if err := d.flat.Lookup(ip, &rec); err != nil {
			return false, err
		}
		if rec.CountryCode == "" && rec.City == "" {
			return false, nil
		}
		g.Country, g.City = rec.CountryCode, rec.City
		if rec.Latitude != 0 || rec.Longitude != 0 {
			g.Lat, g.Lon, g.HasLocation = rec.Latitude, rec.Longitude, true
		}
		return true, nil
	}
	return false, nil
}

// lookupASN fills the network part of g.
func (d *database) lookupASN(ip net.IP, g *tokenwatch.Geo) (bool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var rec geoip2.ASN
	switch {
	case d.geo != nil:
		r, err := d.geo.ASN(ip)
		if err != nil {
			return false, d.methodErr(err)
		}
		rec = *r
	case d.flat != nil:
		if err := d.flat.Lookup(ip, &rec); err != nil {
			return false, err
		}
	default:
		return false, nil
	}
	if rec.AutonomousSystemNumber == 0 {
		return false, nil
	}
	g.ASN, g.ASOrg = uint32(rec.AutonomousSystemNumber), rec.AutonomousSystemOrganization
	return true, nil
}

// methodErr turns "this file is not a City/ASN database" into one warning.
func (d *database) methodErr(err error) error {
	var bad geoip2.InvalidMethodError
	if errors.As(err, &bad) {
		d.warn.Do(func() {
			d.log.Warn("GeoIP database has the wrong type for its setting", "db", d.name, "path", d.path, "type", bad.DatabaseType)
		})
	}
	return err
}
