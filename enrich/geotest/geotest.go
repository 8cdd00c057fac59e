// Package geotest writes MaxMind-format .mmdb files for tests, benchmarks and the
// demo, in the layouts enrich reads: GeoLite2 (MaxMind), DB-IP lite and the flat
// ip-location-db layout. It uses github.com/maxmind/mmdbwriter, so the files are
// real databases read by the same code as production ones.
package geotest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Layout selects the record layout and database type written.
type Layout int

const (
	// GeoLite2 writes "GeoLite2-City" / "GeoLite2-ASN" databases (nested
	// city.names.en, country.iso_code, location.*).
	GeoLite2 Layout = iota
	// DBIPLite writes "DBIP-City-Lite" / "DBIP-ASN-Lite (compat=GeoLite2-ASN)":
	// the GeoLite2 layout without accuracy_radius.
	DBIPLite
	// IPLocationDB writes ip-location-db's flat layout (country_code, city,
	// latitude, longitude; autonomous_system_*), with its own database types.
	IPLocationDB
)

// Network is what the test databases say of one CIDR block.
type Network struct {
	CIDR      string
	Country   string // ISO code
	Continent string // two-letter code; ignored by the flat layout
	City      string
	Lat, Lon  float64
	RadiusKm  uint16
	ASN       uint32
	ASOrg     string
}

// WriteCity writes a City database of nets to path.
func WriteCity(path string, layout Layout, nets []Network) error {
	dbType := map[Layout]string{GeoLite2: "GeoLite2-City", DBIPLite: "DBIP-City-Lite", IPLocationDB: "ip-location-db-city"}[layout]
	return write(path, dbType, nets, func(n Network) mmdbtype.Map {
		if layout == IPLocationDB {
			return mmdbtype.Map{
				"country_code": mmdbtype.String(n.Country),
				"city":         mmdbtype.String(n.City),
				"latitude":     mmdbtype.Float32(n.Lat),
				"longitude":    mmdbtype.Float32(n.Lon),
			}
		}
		loc := mmdbtype.Map{"latitude": mmdbtype.Float64(n.Lat), "longitude": mmdbtype.Float64(n.Lon)}
		if layout == GeoLite2 && n.RadiusKm > 0 {
			loc["accuracy_radius"] = mmdbtype.Uint16(n.RadiusKm)
		}
		rec := mmdbtype.Map{
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String(n.Country), "names": mmdbtype.Map{"en": mmdbtype.String(n.Country)}},
			"continent": mmdbtype.Map{"code": mmdbtype.String(n.Continent)},
			"location":  loc,
		}
		if n.City != "" {
			rec["city"] = mmdbtype.Map{"geoname_id": mmdbtype.Uint32(1 + uint32(len(n.City))), "names": mmdbtype.Map{"en": mmdbtype.String(n.City)}}
		}
		return rec
	})
}

// WriteASN writes an ASN database of nets to path.
func WriteASN(path string, layout Layout, nets []Network) error {
	dbType := map[Layout]string{GeoLite2: "GeoLite2-ASN", DBIPLite: "DBIP-ASN-Lite (compat=GeoLite2-ASN)", IPLocationDB: "ip-location-db-asn"}[layout]
	return write(path, dbType, nets, func(n Network) mmdbtype.Map {
		return mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(n.ASN),
			"autonomous_system_organization": mmdbtype.String(n.ASOrg),
		}
	})
}

func write(path, dbType string, nets []Network, record func(Network) mmdbtype.Map) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 28, Languages: []string{"en"}})
	if err != nil {
		return fmt.Errorf("new mmdb tree: %w", err)
	}
	for _, n := range nets {
		_, ipnet, err := net.ParseCIDR(n.CIDR)
		if err != nil {
			return fmt.Errorf("network %q: %w", n.CIDR, err)
		}
		if err := tree.Insert(ipnet, record(n)); err != nil {
			return fmt.Errorf("insert %s: %w", n.CIDR, err)
		}
	}
	// Write to a temporary file and rename, so a reader polling path never sees
	// a half-written database (the same way operators should replace them).
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mmdb-*")
	if err != nil {
		return err
	}
	if _, err := tree.WriteTo(tmp); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// World is a small set of real-looking networks on several continents, used by
// tests and the demo. Coordinates are the cities' real ones; the address blocks
// are public ranges assigned here only for the fixtures.
var World = []Network{
	{CIDR: "81.2.69.0/24", Country: "GB", Continent: "EU", City: "London", Lat: 51.5074, Lon: -0.1278, RadiusKm: 10, ASN: 2856, ASOrg: "British Telecommunications PLC"},
	{CIDR: "81.2.70.0/24", Country: "GB", Continent: "EU", City: "London", Lat: 51.5142, Lon: -0.0931, RadiusKm: 20, ASN: 5089, ASOrg: "Virgin Media Limited"},
	{CIDR: "2.125.160.0/20", Country: "GB", Continent: "EU", City: "Manchester", Lat: 53.4808, Lon: -2.2426, RadiusKm: 20, ASN: 2856, ASOrg: "British Telecommunications PLC"},
	{CIDR: "89.160.20.0/24", Country: "SE", Continent: "EU", City: "Linköping", Lat: 58.4167, Lon: 15.6167, RadiusKm: 50, ASN: 29518, ASOrg: "Bredband2 AB"},
	{CIDR: "91.64.0.0/16", Country: "DE", Continent: "EU", City: "Berlin", Lat: 52.5200, Lon: 13.4050, RadiusKm: 20, ASN: 3209, ASOrg: "Vodafone GmbH"},
	{CIDR: "93.184.0.0/16", Country: "DE", Continent: "EU", City: "Frankfurt am Main", Lat: 50.1109, Lon: 8.6821, RadiusKm: 20, ASN: 3320, ASOrg: "Deutsche Telekom AG"},
	{CIDR: "176.0.0.0/16", Country: "DE", Continent: "EU", City: "Frankfurt am Main", Lat: 50.1155, Lon: 8.6842, RadiusKm: 50, ASN: 3209, ASOrg: "Vodafone GmbH"},
	{CIDR: "2a02:8100::/32", Country: "DE", Continent: "EU", City: "Berlin", Lat: 52.5200, Lon: 13.4050, RadiusKm: 100, ASN: 3209, ASOrg: "Vodafone GmbH"},
	{CIDR: "216.160.83.0/24", Country: "US", Continent: "NA", City: "Milton", Lat: 47.2513, Lon: -122.3149, RadiusKm: 20, ASN: 209, ASOrg: "CenturyLink Communications, LLC"},
	{CIDR: "24.0.0.0/16", Country: "US", Continent: "NA", City: "New York", Lat: 40.7128, Lon: -74.0060, RadiusKm: 10, ASN: 7922, ASOrg: "Comcast Cable Communications, LLC"},
	{CIDR: "2601::/20", Country: "US", Continent: "NA", City: "New York", Lat: 40.7128, Lon: -74.0060, RadiusKm: 50, ASN: 7922, ASOrg: "Comcast Cable Communications, LLC"},
	{CIDR: "35.190.0.0/16", Country: "US", Continent: "NA", City: "Council Bluffs", Lat: 41.2619, Lon: -95.8608, RadiusKm: 1000, ASN: 15169, ASOrg: "Google LLC"},
	{CIDR: "1.128.0.0/16", Country: "AU", Continent: "OC", City: "Sydney", Lat: -33.8688, Lon: 151.2093, RadiusKm: 20, ASN: 1221, ASOrg: "Telstra Corporation Ltd"},
	{CIDR: "175.16.199.0/24", Country: "CN", Continent: "AS", City: "Changchun", Lat: 43.8800, Lon: 125.3228, RadiusKm: 100, ASN: 4837, ASOrg: "CHINA UNICOM China169 Backbone"},
	{CIDR: "202.196.224.0/20", Country: "PH", Continent: "AS", City: "Manila", Lat: 14.5995, Lon: 120.9842, RadiusKm: 50, ASN: 9299, ASOrg: "Philippine Long Distance Telephone Company"},
	{CIDR: "186.30.0.0/16", Country: "BR", Continent: "SA", City: "São Paulo", Lat: -23.5505, Lon: -46.6333, RadiusKm: 20, ASN: 28573, ASOrg: "Claro NXT Telecomunicacoes Ltda"},
	{CIDR: "41.203.0.0/16", Country: "NG", Continent: "AF", City: "Lagos", Lat: 6.5244, Lon: 3.3792, RadiusKm: 50, ASN: 37148, ASOrg: "Globacom Limited"},
	{CIDR: "103.21.244.0/22", Country: "US", Continent: "NA", City: "", Lat: 37.7510, Lon: -97.8220, RadiusKm: 1000, ASN: 13335, ASOrg: "Cloudflare, Inc."},
}
