package enrich

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Enricher looks addresses up in the configured databases. It is safe for
// concurrent use. Close it to stop the reload loop and unmap the files.
type Enricher struct {
	city, asn *database // nil when not configured
	cache     *cache    // nil when disabled

	stop chan struct{}
	done sync.WaitGroup
}

// Option configures an Enricher.
type Option func(*Enricher, *settings)

type settings struct{ log *slog.Logger }

// WithLogger sets the logger for the missing-database and reload messages.
func WithLogger(l *slog.Logger) Option { return func(_ *Enricher, s *settings) { s.log = l } }

// Open opens the databases named in cfg. It fails only on an invalid cfg: a
// database that cannot be read is reported once and enrichment goes on
// without it (and picks it up when a later reload finds a good file).
func Open(cfg Config, opts ...Option) (*Enricher, error) {
	if cfg.CacheSize < 0 || cfg.ReloadInterval < 0 {
		return nil, cfg.Validate()
	}
	s := settings{log: slog.Default()}
	e := &Enricher{cache: newCache(cfg.CacheSize), stop: make(chan struct{})}
	for _, o := range opts {
		o(e, &s)
	}
	if cfg.CityDB != "" {
		e.city = openDB("city", cfg.CityDB, s.log)
	} else {
		metricAvailable.WithLabelValues("city").Set(0)
	}
	if cfg.ASNDB != "" {
		e.asn = openDB("asn", cfg.ASNDB, s.log)
	} else {
		metricAvailable.WithLabelValues("asn").Set(0)
	}
	if cfg.ReloadInterval > 0 && (e.city != nil || e.asn != nil) {
		e.done.Add(1)
		go e.reloadLoop(cfg.ReloadInterval, s.log)
	}
	return e, nil
}

// Close stops reloading and unmaps the databases. Lookups after Close return
// labels only.
func (e *Enricher) Close() error {
	select {
	case <-e.stop:
		return nil
	default:
	}
	close(e.stop)
	e.done.Wait()
	for _, d := range []*database{e.city, e.asn} {
		if d != nil {
			d.close()
		}
	}
	if e.cache != nil {
		e.cache.clear()
	}
	return nil
}

func (e *Enricher) reloadLoop(every time.Duration, log *slog.Logger) {
	defer e.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.Reload(log)
		}
	}
}

// Reload re-opens every database whose file changed on disk and, if any did,
// empties the cache. The reload loop calls it; it is exported for SIGHUP
// handlers and tests.
func (e *Enricher) Reload(log *slog.Logger) {
	reloaded := false
	for _, d := range []*database{e.city, e.asn} {
		if d == nil || !d.changed() {
			continue
		}
		if err := d.load(); err != nil {
			log.Warn("GeoIP database reload failed; keeping the loaded version", "db", d.name, "path", d.path, "err", err)
			continue
		}
		log.Info("GeoIP database reloaded", "db", d.name, "path", d.path)
		reloaded = true
	}
	if reloaded && e.cache != nil {
		e.cache.clear()
	}
}

// Lookup returns what the databases know of ip. Special-purpose addresses get
// only a Label. An address no database knows returns a zero Geo.
func (e *Enricher) Lookup(ip netip.Addr) tokenwatch.Geo {
	ip = ip.Unmap()
	if l := Label(ip); l != "" {
		lookupLabel.Inc()
		return tokenwatch.Geo{Label: l}
	}
	if e.cache != nil {
		if g, ok := e.cache.get(ip); ok {
			lookupCacheHit.Inc()
			return g
		}
	}
	var g tokenwatch.Geo
	found, failed := false, false
	nip := ip.AsSlice()
	if e.city != nil {
		ok, err := e.city.lookupCity(nip, &g)
		found, failed = found || ok, failed || err != nil
	}
	if e.asn != nil {
		ok, err := e.asn.lookupASN(nip, &g)
		found, failed = found || ok, failed || err != nil
	}
	if g.Continent == "" && g.Country != "" {
		g.Continent = continentOf[g.Country]
	}
	switch {
	case failed:
		lookupError.Inc()
	case found:
		lookupDB.Inc()
	default:
		lookupNotFound.Inc()
	}
	if e.cache != nil && !failed {
		e.cache.put(ip, g)
	}
	return g
}

// Process implements tokenwatch.Stage: it fills Geo for every use in b that
// has a client address.
func (e *Enricher) Process(ctx context.Context, b *tokenwatch.Batch) error {
	for i := range b.Uses {
		u := &b.Uses[i]
		if u.IP.IsValid() {
			u.Geo = e.Lookup(u.IP)
		}
	}
	return ctx.Err()
}
