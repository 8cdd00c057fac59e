package alerts

import (
	"sync"
	"time"
)

// breaker is a per-sink circuit breaker: closed until `failures` consecutive
// attempts fail, then open for `cooldown`, then half-open: one probe at a time
// goes through; a success closes it, a failure opens it again.
type breaker struct {
	sink     string
	failures int
	cooldown time.Duration

	mu        sync.Mutex
	consec    int
	openUntil time.Time // zero: closed
	probing   bool
}

func newBreaker(sink string, c BreakerConfig) *breaker {
	circuitOpen.WithLabelValues(sink).Set(0)
	return &breaker{sink: sink, failures: c.Failures, cooldown: c.Cooldown}
}

// allow reports whether an attempt may go now; when not, retryAt says when to
// ask again.
func (b *breaker) allow(now time.Time) (ok bool, retryAt time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return true, time.Time{}
	}
	if now.Before(b.openUntil) {
		return false, b.openUntil
	}
	if b.probing {
		// One probe at a time; look again shortly.
		return false, now.Add(min(b.cooldown, 100*time.Millisecond))
	}
	b.probing = true
	return true, time.Time{}
}

// record notes the outcome of an attempt that allow let through. Only transport
// failures and retryable answers count as failures.
func (b *breaker) record(success bool, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wasProbe := b.probing
	b.probing = false
	if success {
		b.consec = 0
		if !b.openUntil.IsZero() {
			b.openUntil = time.Time{}
			circuitOpen.WithLabelValues(b.sink).Set(0)
		}
		return
	}
	b.consec++
	if wasProbe || b.consec >= b.failures {
		b.openUntil = now.Add(b.cooldown)
		circuitOpen.WithLabelValues(b.sink).Set(1)
	}
}

// abort forgets an attempt that allow let through but that never finished
// (shutdown), so a half-open circuit does not wait for a probe that is gone.
func (b *breaker) abort() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// isOpen reports whether the circuit is open or half-open.
func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openUntil.IsZero()
}
