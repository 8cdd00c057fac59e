package parse

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	tests := []struct {
		in   string
		loc  *time.Location
		want string // RFC 3339 instant; "" = must fail
	}{
		// RFC 3339 / ISO 8601
		{"2026-11-25T08:14:06Z", nil, "2026-11-25T08:14:06Z"},
		{"2026-11-25T08:14:06.123456789Z", nil, "2026-11-25T08:14:06.123456789Z"},
		{"2026-11-25T08:14:06.1234567891234Z", nil, "2026-11-25T08:14:06.123456789Z"},
		{"2026-11-25t08:14:06z", nil, "2026-11-25T08:14:06Z"},
		{"2026-11-25T09:14:06+01:00", nil, "2026-11-25T08:14:06Z"},
		{"2026-11-25T03:14:06-0500", nil, "2026-11-25T08:14:06Z"},
		{"2026-11-25T10:14:06+02", nil, "2026-11-25T08:14:06Z"},
		{"2026-11-25 08:14:06", nil, "2026-11-25T08:14:06Z"},
		{"2026-11-25 09:14:06", berlin, "2026-11-25T08:14:06Z"},
		{"2026-07-25 10:14:06", berlin, "2026-07-25T08:14:06Z"}, // summer time
		{"2026-11-25 08:14:06,123", nil, "2026-11-25T08:14:06.123Z"},
		{"2026/11/25 08:14:06", nil, "2026-11-25T08:14:06Z"},
		{"2026-11-25T08:14", nil, "2026-11-25T08:14:00Z"},
		{"2026-11-25", nil, "2026-11-25T00:00:00Z"},
		{"2026-11-25 08:14:06 UTC", berlin, "2026-11-25T08:14:06Z"},
		{"2026-11-25 08:14:06 GMT+01:00", nil, "2026-11-25T07:14:06Z"},
		{"2026-11-25 08:14:06.5 +0000 UTC", nil, "2026-11-25T08:14:06.5Z"},                     // Go time.String
		{"2026-11-25 09:14:06 +0100 CET m=+0.000012", nil, "2026-11-25T08:14:06Z"},             // with monotonic reading
		{"2026-11-25 00:14:06 PST", nil, "2026-11-25T08:14:06Z"},                               // known abbreviation
		{"2026-11-25T24:00:00Z", nil, "2026-11-26T00:00:00Z"},                                  // ISO end of day
		{"2024-02-29T00:00:00Z", nil, "2024-02-29T00:00:00Z"},                                  // leap day
		{"  \"2026-11-25T08:14:06Z\" ", nil, "2026-11-25T08:14:06Z"},                           // quoted
		{"[2026-11-25T08:14:06Z]", nil, "2026-11-25T08:14:06Z"},                                // bracketed
		{"2025-02-29T00:00:00Z", nil, ""},                                                      // not a leap year
		{"2026-13-01T00:00:00Z", nil, ""},                                                      // month 13
		{"2026-11-25T25:00:00Z", nil, ""},                                                      // hour 25
		{"2026-11-25T08:14:06 XYZ", nil, ""},                                                   // unknown zone
		{"2026-11-25T08:14:06+25:00", nil, ""},                                                 // offset too large
		{"2026-11-25X08:14:06Z", nil, ""},                                                      // bad separator
		{"2026-11-25T08:14:06Zjunk", nil, ""},                                                  // trailing junk
		{"2026-11-25T08:14:06.Z", nil, ""},                                                     // empty fraction
		{"20261125T081406Z", nil, ""},                                                          // basic format unsupported
		{"2026-11-25T08:14:06Z2026-11-25T08:14:06Z2026-11-25T08:14:06Z2026-11-25T08", nil, ""}, // too long
		// Epoch: seconds, ms, µs, ns; numbers and strings; decimals and exponents.
		{"1795594446", nil, "2026-11-25T08:14:06Z"},
		{"1795594446.25", nil, "2026-11-25T08:14:06.25Z"},
		{"1795594446.123456789", nil, "2026-11-25T08:14:06.123456789Z"},
		{"1795594446123", nil, "2026-11-25T08:14:06.123Z"},
		{"1795594446123.5", nil, "2026-11-25T08:14:06.1235Z"},
		{"1795594446123456", nil, "2026-11-25T08:14:06.123456Z"},
		{"1795594446123456789", nil, "2026-11-25T08:14:06.123456789Z"},
		{"1.795594446e9", nil, "2026-11-25T08:14:06Z"},
		{"1.795594446123E12", nil, "2026-11-25T08:14:06.123Z"},
		{"100000000", nil, "1973-03-03T09:46:40Z"},
		{"99999999", nil, ""},                 // below 1e8: not a timestamp
		{"200", nil, ""},                      // a status code, not a time
		{"99999999999999999999", nil, ""},     // overflows int64 ns
		{"999999999999999999999999", nil, ""}, // overflows uint64
		{"-1795594446", nil, ""},              // negative
		{"1795594446.", nil, "2026-11-25T08:14:06Z"},
		{"1795594446.12.3", nil, ""},
		// Common log format
		{"10/Oct/2000:13:55:36 -0700", nil, "2000-10-10T20:55:36Z"},
		{"25/Nov/2026:08:14:06 +0000", nil, "2026-11-25T08:14:06Z"},
		{"25/nov/2026:09:14:06", berlin, "2026-11-25T08:14:06Z"},
		{"31/Nov/2026:08:14:06 +0000", nil, ""},
		{"25/Foo/2026:08:14:06 +0000", nil, ""},
		// Syslog (year-less dates resolve to the year nearest ref, 2026-11-25)
		{"Nov 25 08:14:06", nil, "2026-11-25T08:14:06Z"},
		{"Nov  5 08:14:06", nil, "2026-11-05T08:14:06Z"},
		{"Nov 5 08:14:06", nil, "2026-11-05T08:14:06Z"},
		{"Nov 25 08:14:06.250", nil, "2026-11-25T08:14:06.25Z"},
		{"Jan  2 00:00:00", nil, "2027-01-02T00:00:00Z"}, // 38 days ahead is nearer than 327 back
		{"Jun 30 12:00:00", nil, "2026-06-30T12:00:00Z"}, // in the past
		{"Feb 29 12:00:00", nil, ""},                     // no leap year within a year of ref: rejected rather than guessed
		{"Nov 25 2026 08:14:06", nil, "2026-11-25T08:14:06Z"},
		{"Nov 25 09:14:06", berlin, "2026-11-25T08:14:06Z"},
		{"Nov 32 08:14:06", nil, ""},
		{"Foo 25 08:14:06", nil, ""},
		// ANSIC, Apache error log, RFC 1123
		{"Wed Nov 25 08:14:06 2026", nil, "2026-11-25T08:14:06Z"},
		{"Wed Nov 25 08:14:06.123456 2026", nil, "2026-11-25T08:14:06.123456Z"},
		{"Wed, 25 Nov 2026 08:14:06 GMT", nil, "2026-11-25T08:14:06Z"},
		{"Wed, 25 Nov 2026 09:14:06 +0100", nil, "2026-11-25T08:14:06Z"},
		// Not times
		{"", nil, ""},
		{"-", nil, ""},
		{"null", nil, ""},
		{"hello world", nil, ""},
		{"2026", nil, ""},
		{"::1", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseTimeRef([]byte(tc.in), tc.loc, ref)
			if tc.want == "" {
				if ok {
					t.Fatalf("ParseTime(%q) = %v, want failure", tc.in, got)
				}
				return
			}
			want, err := time.Parse(time.RFC3339Nano, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if !ok || !got.Equal(want) {
				t.Fatalf("ParseTime(%q) = %v, %v; want %v", tc.in, got.UTC(), ok, want)
			}
		})
	}
}

// TestParseTimeYearlessAroundNewYear: a December date read in early January is
// last year's, a January date read in late December is next year's.
func TestParseTimeYearlessAroundNewYear(t *testing.T) {
	jan := time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)
	got, ok := parseTimeRef([]byte("Dec 31 23:59:59"), time.UTC, jan)
	if !ok || got.Year() != 2026 {
		t.Errorf("Dec 31 read on 2027-01-02 = %v, want 2026", got)
	}
	dec := time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC)
	got, ok = parseTimeRef([]byte("Jan  1 00:00:30"), time.UTC, dec)
	if !ok || got.Year() != 2027 {
		t.Errorf("Jan 1 read on 2026-12-31 = %v, want 2027", got)
	}
}

// TestParseTimeExported: ParseTime uses the current time for year-less dates.
func TestParseTimeExported(t *testing.T) {
	got, ok := ParseTime([]byte("2026-11-25T08:14:06Z"), nil)
	if !ok || !got.Equal(time.Date(2026, 11, 25, 8, 14, 6, 0, time.UTC)) {
		t.Errorf("ParseTime = %v, %v", got, ok)
	}
	now := time.Now()
	got, ok = ParseTime([]byte(now.UTC().Format(time.Stamp)), time.UTC)
	if !ok || got.Year() != now.UTC().Year() {
		t.Errorf("year-less ParseTime = %v, %v; want the current year", got, ok)
	}
}

func TestParseTimeLayoutOverride(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TimeLayout = "2006.01.02-15h04m05s"
	p := newTestParser(t, cfg)
	got, ok := p.parseTime([]byte("2026.11.25-08h14m06s"), ref)
	if !ok || !got.Equal(time.Date(2026, 11, 25, 8, 14, 6, 0, time.UTC)) {
		t.Errorf("layout override: %v, %v", got, ok)
	}
	// Built-in forms still work.
	if _, ok := p.parseTime([]byte("2026-11-25T08:14:06Z"), ref); !ok {
		t.Error("built-in form rejected when a layout is set")
	}
}
