package parse

import (
	"strings"
	"testing"
)

func TestHasControl(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false},
		{"plain ascii text, longer than eight bytes", false},
		{"caf\u00e9 \xff\xfe high bytes are not control", false},
		{"tab\there", true},
		{"\x1f", true},
		{strings.Repeat("a", 63) + "\n", true},
		{strings.Repeat(" ", 64), false},
		{"\x00", true},
	} {
		if got := hasControl([]byte(tc.in)); got != tc.want {
			t.Errorf("hasControl(%q) = %v, want %v", tc.in, got, tc.want)
		}
		// Same answer as the byte loop.
		slow := false
		for i := 0; i < len(tc.in); i++ {
			if tc.in[i] < 0x20 {
				slow = true
			}
		}
		if slow != tc.want {
			t.Errorf("test case %q is wrong", tc.in)
		}
	}
}

func TestScanString(t *testing.T) {
	for _, tc := range []struct {
		in  string
		end int // -1: unterminated
		esc bool
	}{
		{`"abc"`, 5, false},
		{`"a\"b"`, 6, true},
		{`"a\\"`, 5, true},
		{`"` + strings.Repeat("x", 100) + `"`, 102, false},
		{`"` + strings.Repeat("x", 100) + `\"x"`, 105, true},
		{`"` + strings.Repeat(`\\`, 60) + `"`, 122, true},
		{`"abc`, -1, false},
		{`"abc\"`, -1, false},
	} {
		end, esc, ok := scanString([]byte(tc.in), 0)
		if tc.end < 0 {
			if ok {
				t.Errorf("scanString(%q) = %d, want unterminated", tc.in, end)
			}
			continue
		}
		if !ok || end != tc.end || esc != tc.esc {
			t.Errorf("scanString(%q) = %d, %v, %v; want %d, %v", tc.in, end, esc, ok, tc.end, tc.esc)
		}
	}
}
