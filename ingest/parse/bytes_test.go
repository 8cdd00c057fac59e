package parse

import (
	"strings"
	"testing"
	"unicode/utf8"
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

func TestToString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"fits", "/api/v1", 16, "/api/v1"},
		{"cut", "/api/v1/users", 7, "/api/v1"},
		{"cut before a split rune", "ab\u00e9cd", 3, "ab"},
		{"invalid replaced", "a\xffb", 16, "a\uFFFDb"},
		{"each invalid byte replaced", "a\xff\xfeb", 16, "a\uFFFD\uFFFDb"},
		{"cap holds after replacement", "\xff\xff\xff\xff", 7, "\uFFFD\uFFFD"},
		{"replacement that does not fit is dropped", "ab\xff", 4, "ab"},
		{"empty", "", 4, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toString([]byte(tt.in), tt.max)
			if got != tt.want {
				t.Errorf("toString(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if len(got) > tt.max || !utf8.ValidString(got) {
				t.Errorf("toString(%q, %d) = %q: over the cap or invalid", tt.in, tt.max, got)
			}
		})
	}
}
