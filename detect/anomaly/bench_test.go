package anomaly

import (
	"runtime"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// benchUses returns n uses over tokens tokens in event-time order: mostly each
// token from its home network, sometimes from a second one.
func benchUses(n, tokens int) []tokenwatch.TokenUse {
	places := []place{frankfurt, berlinHome, berlinLTE, munichCorp, london, paris, newYork, sanFran, v6Priv1, sydney}
	uas := []string{uaChrome, uaSafari, uaCurl}
	uses := make([]tokenwatch.TokenUse, n)
	for i := range uses {
		tok := i % tokens
		p := places[tok%len(places)]
		if i%17 == 0 {
			p = places[(tok+1)%len(places)]
		}
		u := use(0, time.Duration(i)*time.Millisecond, p, withUA(uas[tok%len(uas)]))
		u.Fingerprint = benchFP(tok)
		u.JWT.Jti = ""
		uses[i] = u
	}
	return uses
}

func benchFP(i int) tokenwatch.Fingerprint {
	var f tokenwatch.Fingerprint
	x := uint64(i)*0x9E3779B97F4A7C15 + 1
	for j := range f {
		x ^= x >> 29
		x *= 0xBF58476D1CE4E5B9
		f[j] = byte(x >> 56)
	}
	return f
}

// BenchmarkObserve measures one core judging token uses of 100k live tokens,
// keyed by fingerprint, or (jti) by the SHA-256 of issuer and jti. Each token
// has a home network and client (10 cities x 3 user agents); every 17th use
// comes from a benign second network. The use being judged is cache-resident, as in a
// pipeline where it was just decoded; the token state is not.
func BenchmarkObserve(b *testing.B) {
	for _, jti := range []bool{false, true} {
		name := "key=fingerprint"
		if jti {
			name = "key=jti"
		}
		b.Run(name, func(b *testing.B) {
			const tokens = 100_000
			places := []place{frankfurt, berlinHome, berlinLTE, munichCorp, london, paris, newYork, sanFran, v6Priv1, sydney}
			roam := []int{3, 2, 1, 0, 4, 5, 7, 6, 1, 9} // same metro, same country or same ASN
			uas := []string{uaChrome, uaSafari, uaCurl}
			var protos []tokenwatch.TokenUse
			for _, p := range places {
				for _, ua := range uas {
					protos = append(protos, use(0, 0, p, withUA(ua)))
				}
			}
			fps := make([]tokenwatch.Fingerprint, tokens)
			jtis := make([]string, tokens)
			for t := range fps {
				fps[t] = benchFP(t)
				jtis[t] = "6f1c2a4e-" + fps[t].String()[:12]
			}
			e := newTestEngine(b)
			var dst []tokenwatch.Alert
			step := func(i int) {
				t := i % tokens
				pi := t % len(places)
				if i%17 == 0 { // roaming to a benign second network
					pi = roam[pi]
				}
				u := &protos[pi*len(uas)+t%len(uas)]
				u.Fingerprint = fps[t]
				u.Time = t0.Add(time.Duration(i) * time.Millisecond)
				u.JWT.Jti = ""
				if jti {
					u.JWT.Jti = jtis[t]
				}
				dst = e.observe(u, dst[:0])
			}
			for i := range 2 * tokens {
				step(i)
			}
			b.SetBytes(int64(len(AppendUse(nil, &protos[0]))))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				step(2*tokens + i)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "uses/s")
			reportCPU(b, cpu0)
		})
	}
}

// BenchmarkObserveParallel measures all cores sharing one engine.
func BenchmarkObserveParallel(b *testing.B) {
	const n, tokens = 1 << 18, 100_000
	uses := benchUses(n, tokens)
	e := newTestEngine(b, func(c *Config) { c.Shards = 0 })
	for i := range uses {
		e.observe(&uses[i], nil)
	}
	b.SetBytes(int64(len(AppendUse(nil, &uses[0]))))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		var dst []tokenwatch.Alert
		local := make([]tokenwatch.TokenUse, 4096)
		copy(local, uses)
		i := 0
		for pb.Next() {
			u := &local[i%len(local)]
			u.Time = u.Time.Add(time.Second)
			dst = e.observe(u, dst[:0])
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "uses/s")
	reportCPU(b, cpu0)
}

// reportCPU reports uses per CPU-second of this process since cpu0 (the
// per-core throughput, independent of other load on the machine).
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if d := processCPU() - cpu0; d > 0 {
		b.ReportMetric(float64(b.N)/d.Seconds(), "uses/cpu-s")
	}
}

// BenchmarkStateBytesPerToken measures heap bytes per token with state, with
// one use per token and with a full ring of distinct networks.
func BenchmarkStateBytesPerToken(b *testing.B) {
	for _, tc := range []struct {
		name string
		uses int
	}{{"uses=1", 1}, {"ring=full", ringSize}} {
		b.Run(tc.name, func(b *testing.B) {
			const tokens = 100_000
			places := []place{frankfurt, berlinLTE, london, newYork, paris}
			var perToken float64
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				e := newTestEngine(b, func(c *Config) { c.MaxTokens = 2 * tokens })
				u := use(0, 0, frankfurt)
				u.JWT.Jti = ""
				for t := range tokens {
					u.Fingerprint = benchFP(t)
					for k := range tc.uses {
						p := places[k]
						u.Time = t0.Add(time.Duration(t+k*tokens) * time.Millisecond)
						u.IP, u.Geo.ASN, u.Geo.City = netipOf(p.ip), p.asn, p.city
						u.Geo.Lat, u.Geo.Lon, u.Geo.Country = p.lat, p.lon, p.country
						e.observe(&u, nil)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if e.Len() != tokens {
					b.Fatalf("Len = %d", e.Len())
				}
				perToken = float64(after.HeapAlloc-before.HeapAlloc) / tokens
				runtime.KeepAlive(e)
			}
			b.ReportMetric(perToken, "bytes/token")
		})
	}
}

func BenchmarkAppendUse(b *testing.B) {
	u := use(1, 0, frankfurt)
	buf := AppendUse(nil, &u)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendUse(buf[:0], &u)
	}
}

func BenchmarkDecodeUse(b *testing.B) {
	u := use(1, 0, frankfurt)
	buf := AppendUse(nil, &u)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var got tokenwatch.TokenUse
	for i := 0; i < b.N; i++ {
		if err := DecodeUse(buf, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassifyUA(b *testing.B) {
	b.SetBytes(int64(len(uaChrome)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if classifyUA(uaChrome) != famChrome {
			b.Fatal("wrong family")
		}
	}
}
