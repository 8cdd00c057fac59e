package anomaly

import (
	"math"
	"testing"
	"unsafe"
)

// TestStateSize pins the compact layout the memory target depends on.
func TestStateSize(t *testing.T) {
	if s := unsafe.Sizeof(obs{}); s != 56 {
		t.Errorf("obs is %d bytes, want 56", s)
	}
	if s := unsafe.Sizeof(state{}); s != 280 {
		t.Errorf("state is %d bytes, want 280", s)
	}
	if s := unsafe.Sizeof(state{}) * pageSize; s%8192 != 0 {
		t.Errorf("a page of states is %d bytes, not a multiple of 8 KiB (size-class waste)", s)
	}
}

// TestSpanCode: the span code is an upper bound within a quarter octave.
func TestSpanCode(t *testing.T) {
	for x := int64(0); x < 60_000; x += 1 + x/50 {
		c := spanCode(x)
		b := spanBound(c)
		if b < x {
			t.Fatalf("spanBound(spanCode(%d)) = %d, below the span", x, b)
		}
		if c < spanMax && x > 4 && float64(b) > 1.25*float64(x)+1 {
			t.Fatalf("spanBound(spanCode(%d)) = %d, looser than a quarter octave", x, b)
		}
	}
	if spanCode(0) != 0 || spanBound(0) != 0 {
		t.Error("a single use has no span")
	}
	if c := spanCode(1 << 40); c != spanMax || spanBound(c) != math.MaxInt64 {
		t.Errorf("a very long span is not unbounded: %d", c)
	}
}
