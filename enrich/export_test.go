package enrich

// CacheLen exposes the cache size to the external tests.
func CacheLen(e *Enricher) int {
	if e.cache == nil {
		return 0
	}
	return e.cache.len()
}
