//go:build unix

package anomaly

import (
	"syscall"
	"time"
)

// processCPU returns the user+system CPU time of this process, so benchmarks
// can report throughput per CPU-second, which stays meaningful on a machine
// shared with other work (wall-clock ns/op does not).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
