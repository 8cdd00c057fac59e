package anomaly

import (
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
