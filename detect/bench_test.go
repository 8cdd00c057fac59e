package detect

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/ahocorasick"
	"github.com/tokenwatch/tokenwatch"
)

func benchScanner(b *testing.B) *Scanner {
	s, err := New(WithKey([]byte("benchmark-key-0123456789")))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func totalBytes(lines [][]byte) int64 {
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	return int64(n)
}

func benchScan(b *testing.B, lines [][]byte) {
	s := benchScanner(b)
	var dst []tokenwatch.Finding
	b.SetBytes(totalBytes(lines))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, l := range lines {
			dst = s.Scan(l, dst[:0])
		}
	}
}

// BenchmarkScanClean: clean-heavy realistic logs, one credential per 1,000 lines.
func BenchmarkScanClean(b *testing.B) { benchScan(b, corpus(1, 20000, 1000)) }

// BenchmarkScanDense: every line carries a credential.
func BenchmarkScanDense(b *testing.B) { benchScan(b, corpus(2, 5000, 1)) }

// BenchmarkBytesIndexBaseline is the reference: a plain bytes.Index pass for
// "eyJ" over the same buffer as BenchmarkScanClean.
func BenchmarkBytesIndexBaseline(b *testing.B) {
	lines := corpus(1, 20000, 1000)
	buf := bytes.Join(lines, []byte{'\n'})
	buf = append(buf, '\n')
	needle := []byte("eyJ")
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		rest := buf
		for {
			i := bytes.Index(rest, needle)
			if i < 0 {
				break
			}
			n++
			rest = rest[i+len(needle):]
		}
	}
	if n == 0 {
		b.Fatal("baseline found nothing")
	}
}

// BenchmarkScanVsIndex alternates a scan pass and a bytes.Index("eyJ") pass
// over the same clean-heavy buffer in every iteration, so both see the same
// machine load, and reports both speeds and their ratio (scan/index).
func BenchmarkScanVsIndex(b *testing.B) {
	lines := corpus(1, 20000, 1000)
	buf := bytes.Join(lines, []byte{'\n'})
	s := benchScanner(b)
	var dst []tokenwatch.Finding
	needle := []byte("eyJ")
	var tScan, tIndex time.Duration
	b.SetBytes(totalBytes(lines))
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		for _, l := range lines {
			dst = s.Scan(l, dst[:0])
		}
		t1 := time.Now()
		for rest := buf; ; {
			i := bytes.Index(rest, needle)
			if i < 0 {
				break
			}
			rest = rest[i+len(needle):]
		}
		tScan += t1.Sub(t0)
		tIndex += time.Since(t1)
	}
	mb := float64(totalBytes(lines)) * float64(b.N) / 1e6
	b.ReportMetric(mb/tScan.Seconds(), "scan-MB/s")
	b.ReportMetric(mb/tIndex.Seconds(), "index-MB/s")
	b.ReportMetric(tIndex.Seconds()/tScan.Seconds(), "ratio")
}

// BenchmarkScanAdversarial: a 4 MiB line of anchors that never validate
// (linear time: compare its MB/s with BenchmarkScanClean).
func BenchmarkScanAdversarial(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 4<<20 {
		sb.WriteString("eyJhbGciOiJIUzI1NiJ9.. Bearer token=x access_token: code=1 Cookie: a=b; ghp_x ")
	}
	line := []byte(sb.String())
	s := benchScanner(b)
	var dst []tokenwatch.Finding
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		dst = s.Scan(line, dst[:0])
	}
}

// BenchmarkPrefilter measures the anchor prefilter alone (no validators).
func BenchmarkPrefilter(b *testing.B) {
	lines := corpus(1, 20000, 1000)
	m := theMatcher
	var cands [maxBlockCands]cand
	b.SetBytes(totalBytes(lines))
	b.ReportAllocs()
	hits := 0
	for b.Loop() {
		for _, l := range lines {
			for i := 0; i < len(l); {
				n, next := m.nextBlock(l, i, &cands)
				hits += n
				i = next
			}
		}
	}
	_ = hits
}

// acDictionary is the anchor set for cloudflare/ahocorasick, with the case
// variants it needs for case-insensitive anchors (it has no folding).
func acDictionary() []string {
	var d []string
	for _, a := range theMatcher.anchors {
		if !a.ci {
			d = append(d, a.text)
			continue
		}
		d = append(d, a.text, strings.ToUpper(a.text), strings.ToUpper(a.text[:1])+a.text[1:])
	}
	return d
}

// BenchmarkPrefilterCloudflareAC measures cloudflare/ahocorasick's Match over
// the same lines: it only says which anchors occur, not where.
func BenchmarkPrefilterCloudflareAC(b *testing.B) {
	lines := corpus(1, 20000, 1000)
	m := ahocorasick.NewStringMatcher(acDictionary())
	b.SetBytes(totalBytes(lines))
	b.ReportAllocs()
	hits := 0
	for b.Loop() {
		for _, l := range lines {
			hits += len(m.Match(l))
		}
	}
	_ = hits
}
