// Package enrich turns a client IP address into what an analyst and the anomaly
// rules need to know of it: ASN and AS organisation, country, continent, city,
// latitude/longitude and the GeoIP accuracy radius.
//
// It owns the MaxMind-format databases (GeoLite2 / GeoIP2, DB-IP lite and the
// flat ip-location-db layout), opened memory-mapped through
// github.com/oschwald/geoip2-golang (maxminddb for the layouts geoip2 does not
// know), reloaded without a restart when a file changes, and a bounded
// netip.Addr-keyed cache in front of them. Private, loopback, CGNAT,
// documentation and other special ranges are labelled, never looked up.
//
// A missing or unreadable database degrades enrichment (one warning, a metric)
// and never fails the pipeline. The package does no network I/O.
package enrich
