package detect

import (
	"bytes"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// threadCPU returns the CPU time of the calling OS thread (Linux).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestReportCPUThroughput prints scan and bytes.Index throughput per CPU
// second of the scanning thread, which stays meaningful on a loaded machine
// where wall-clock benchmarks are not. It asserts nothing about speed; run it
// with TOKENWATCH_CPU_THROUGHPUT=1 go test -run ReportCPUThroughput -v ./detect.
func TestReportCPUThroughput(t *testing.T) {
	if os.Getenv("TOKENWATCH_CPU_THROUGHPUT") == "" {
		t.Skip("set TOKENWATCH_CPU_THROUGHPUT=1 to measure")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s := newTestScanner(t)
	for _, c := range []struct {
		name  string
		lines [][]byte
	}{{"clean-heavy (1 credential / 1000 lines)", corpus(1, 20000, 1000)}, {"dense (1 credential / line)", corpus(2, 5000, 1)}} {
		total := float64(totalBytes(c.lines))
		buf := bytes.Join(c.lines, []byte{'\n'})
		var dst []tokenwatch.Finding
		measure := func(f func()) float64 {
			f()
			t0, n := threadCPU(), 0
			for threadCPU()-t0 < 2*time.Second {
				f()
				n++
			}
			return total * float64(n) / (threadCPU() - t0).Seconds() / 1e6
		}
		scan := measure(func() {
			for _, l := range c.lines {
				dst = s.Scan(l, dst[:0])
			}
		})
		index := measure(func() {
			for rest := buf; ; {
				i := bytes.Index(rest, []byte("eyJ"))
				if i < 0 {
					break
				}
				rest = rest[i+3:]
			}
		})
		t.Logf("%s: scan %.0f MB/s per CPU second, bytes.Index(\"eyJ\") %.0f MB/s, ratio %.2f", c.name, scan, index, scan/index)
	}
}
