package enrich

import (
	"net/netip"
	"sync"

	"github.com/tokenwatch/tokenwatch"
)

const cacheShards = 16

// cache is a bounded netip.Addr -> Geo map. Each shard keeps two generations:
// when the current one is full it becomes the old one and the previous old one
// is dropped, so the cache never holds more than its size and recently used
// entries survive (a hit in the old generation moves the entry forward). This
// costs no per-entry bookkeeping, unlike an LRU list.
type cache struct {
	perGen int // entries per generation per shard
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu       sync.Mutex
	cur, old map[netip.Addr]tokenwatch.Geo
	_        [40]byte // keep shards on separate cache lines
}

func newCache(size int) *cache {
	if size <= 0 {
		return nil
	}
	per := size / cacheShards / 2
	if per < 1 {
		per = 1
	}
	c := &cache{perGen: per}
	for i := range c.shards {
		c.shards[i].cur = make(map[netip.Addr]tokenwatch.Geo)
	}
	return c
}

func (c *cache) shard(ip netip.Addr) *cacheShard {
	b := ip.As16()
	return &c.shards[(b[15]^b[13]^b[11])%cacheShards]
}

func (c *cache) get(ip netip.Addr) (tokenwatch.Geo, bool) {
	s := c.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.cur[ip]; ok {
		return g, true
	}
	if g, ok := s.old[ip]; ok {
		c.putLocked(s, ip, g)
		return g, true
	}
	return tokenwatch.Geo{}, false
}

func (c *cache) put(ip netip.Addr, g tokenwatch.Geo) {
	s := c.shard(ip)
	s.mu.Lock()
	c.putLocked(s, ip, g)
	s.mu.Unlock()
}

func (c *cache) putLocked(s *cacheShard, ip netip.Addr, g tokenwatch.Geo) {
	if len(s.cur) >= c.perGen {
		metricCacheEntries.Sub(float64(len(s.old)))
		s.old, s.cur = s.cur, make(map[netip.Addr]tokenwatch.Geo, c.perGen)
	}
	if _, ok := s.cur[ip]; !ok {
		metricCacheEntries.Inc()
	}
	s.cur[ip] = g
}

// len returns the number of entries held, for tests.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.old)
		s.mu.Unlock()
	}
	return n
}

// clear drops every entry (after a database reload).
func (c *cache) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		metricCacheEntries.Sub(float64(len(s.cur) + len(s.old)))
		s.cur, s.old = make(map[netip.Addr]tokenwatch.Geo), nil
		s.mu.Unlock()
	}
}
