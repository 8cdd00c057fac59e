package parse

import (
	"strconv"
	"time"
)

// maxTimeLen bounds the input of ParseTime: no supported form is longer.
const maxTimeLen = 80

// ParseTime parses an event time in any of the forms log records use:
//
//   - RFC 3339 / ISO 8601: 2026-11-25T08:14:06Z, 2026-11-25 08:14:06.123456+01:00,
//     2026-11-25T08:14:06,123 (comma fraction), 2026/11/25 08:14:06, date only
//     2026-11-25, zones Z, ±hh, ±hhmm, ±hh:mm, UTC/GMT (optionally followed by an
//     offset), a trailing zone abbreviation after an offset (Go's time.String form),
//     and a few common abbreviations (PST, CET, …) on their own;
//   - epoch numbers, as JSON numbers or strings, with or without decimals or an
//     exponent: seconds, milliseconds, microseconds or nanoseconds, told apart by
//     magnitude (seconds below 1e11, ms below 1e14, µs below 1e17, ns above); values
//     below 1e8 (before March 1973) are rejected as not a timestamp;
//   - common log format: 10/Oct/2000:13:55:36 -0700 (zone optional);
//   - syslog RFC 3164: Oct 11 22:14:15 (year-less: the year that puts the time nearest
//     now is assumed), Oct 11 2026 22:14:15;
//   - ANSIC / Apache error log: Wed Oct 11 14:32:52[.123456] 2000; RFC 1123 and
//     Unix date forms.
//
// Times before 1970 are rejected as placeholders (Go's zero time and the like).
// Surrounding brackets or quotes are ignored. A time without a zone is taken in loc
// (UTC when loc is nil). The result keeps the zone it was written in; callers
// compare instants, not wall clocks.
func ParseTime(s []byte, loc *time.Location) (time.Time, bool) {
	return parseTimeRef(s, loc, time.Now())
}

// parseTimeRef is ParseTime with the reference time used for year-less dates.
// Times before 1970 are rejected: they are placeholders ("0001-01-01T00:00:00Z",
// Go's zero time), not events.
func parseTimeRef(s []byte, loc *time.Location, ref time.Time) (time.Time, bool) {
	t, ok := parseTimeAny(s, loc, ref)
	if !ok || t.Year() < 1970 {
		return time.Time{}, false
	}
	return t, true
}

func parseTimeAny(s []byte, loc *time.Location, ref time.Time) (time.Time, bool) {
	s = trimSpace(s)
	if len(s) >= 2 && ((s[0] == '[' && s[len(s)-1] == ']') || (s[0] == '"' && s[len(s)-1] == '"')) {
		s = trimSpace(s[1 : len(s)-1])
	}
	if len(s) == 0 || len(s) > maxTimeLen {
		return time.Time{}, false
	}
	if loc == nil {
		loc = time.UTC
	}
	c := s[0]
	switch {
	case isDigit(c):
		if t, ok := parseISO(s, loc); ok {
			return t, true
		}
		if t, ok := parseCLFTime(s, loc); ok {
			return t, true
		}
		return parseEpoch(s)
	case isAlpha(c):
		if len(s) < 14 {
			return time.Time{}, false
		}
		if monthOf(s[:3]) != 0 {
			if t, ok := parseSyslogTime(s, loc, ref); ok {
				return t, true
			}
		} else if !isWeekday(s[:3]) {
			return time.Time{}, false // no named form starts otherwise: skip time.Parse
		}
		return parseNamedLayouts(s, loc)
	}
	return time.Time{}, false
}

// parseISO parses RFC 3339 / ISO 8601 and its common relaxations. The whole of s
// must be consumed.
func parseISO(s []byte, loc *time.Location) (time.Time, bool) {
	if len(s) < 10 || (s[4] != '-' && s[4] != '/') || s[7] != s[4] {
		return time.Time{}, false
	}
	year, ok1 := atoiN(s[0:4])
	month, ok2 := atoiN(s[5:7])
	day, ok3 := atoiN(s[8:10])
	if !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) {
		return time.Time{}, false
	}
	if len(s) == 10 {
		return time.Date(year, time.Month(month), day, 0, 0, 0, 0, loc), true
	}
	if c := s[10]; c != 'T' && c != 't' && c != ' ' && c != '_' {
		return time.Time{}, false
	}
	rest := s[11:]
	hour, min, sec, nsec, n, ok := parseClock(rest)
	if !ok {
		return time.Time{}, false
	}
	rest = rest[n:]
	z, ok := parseZone(rest, loc)
	if !ok {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, min, sec, nsec, z), true
}

// parseClock parses hh:mm[:ss[.frac]] at the start of s and returns the number of
// bytes used.
func parseClock(s []byte) (hour, min, sec, nsec, n int, ok bool) {
	if len(s) < 5 || s[2] != ':' {
		return
	}
	var ok1, ok2 bool
	hour, ok1 = atoiN(s[0:2])
	min, ok2 = atoiN(s[3:5])
	if !ok1 || !ok2 || hour > 24 || min > 59 {
		return 0, 0, 0, 0, 0, false
	}
	n = 5
	if len(s) >= 8 && s[5] == ':' {
		var ok3 bool
		sec, ok3 = atoiN(s[6:8])
		if !ok3 || sec > 60 {
			return 0, 0, 0, 0, 0, false
		}
		n = 8
		if len(s) > 9 && (s[8] == '.' || s[8] == ',') && isDigit(s[9]) {
			n = 9
			scale := 100000000
			for n < len(s) && isDigit(s[n]) {
				if scale > 0 {
					nsec += int(s[n]-'0') * scale
					scale /= 10
				}
				n++
			}
		}
	}
	if hour == 24 && (min != 0 || sec != 0 || nsec != 0) {
		return 0, 0, 0, 0, 0, false
	}
	return hour, min, sec, nsec, n, true
}

// parseZone parses what follows the clock: nothing, Z, ±hh[[:]mm], UTC/GMT[±hh[:mm]],
// an offset followed by an abbreviation, or a known abbreviation.
func parseZone(s []byte, loc *time.Location) (*time.Location, bool) {
	s = trimSpace(s)
	if len(s) == 0 {
		return loc, true
	}
	if len(s) == 1 && (s[0] == 'Z' || s[0] == 'z') {
		return time.UTC, true
	}
	if len(s) >= 3 && (eqFold(s[:3], "UTC") || eqFold(s[:3], "GMT")) {
		s = s[3:]
		if len(s) == 0 {
			return time.UTC, true
		}
		if s[0] != '+' && s[0] != '-' {
			return nil, false
		}
	}
	if s[0] == '+' || s[0] == '-' {
		off, n, ok := parseOffset(s)
		if !ok {
			return nil, false
		}
		rest := trimSpace(s[n:])
		// Go's time.String: "-0700 MST" and possibly " m=+0.000001".
		for len(rest) > 0 {
			i := 0
			for i < len(rest) && rest[i] != ' ' {
				i++
			}
			word := rest[:i]
			if !isAlphaWord(word) && !(len(word) > 2 && word[0] == 'm' && word[1] == '=') {
				return nil, false
			}
			rest = trimSpace(rest[i:])
		}
		if off == 0 {
			return time.UTC, true
		}
		return time.FixedZone("", off), true
	}
	if isAlphaWord(s) {
		if off, ok := zoneAbbrev(s); ok {
			if off == 0 {
				return time.UTC, true
			}
			return time.FixedZone("", off), true
		}
	}
	return nil, false
}

// parseOffset parses ±hh, ±hhmm or ±hh:mm and returns seconds east of UTC.
func parseOffset(s []byte) (off, n int, ok bool) {
	if len(s) < 3 {
		return 0, 0, false
	}
	h, ok1 := atoiN(s[1:3])
	if !ok1 || h > 18 {
		return 0, 0, false
	}
	n = 3
	m := 0
	switch {
	case len(s) >= 6 && s[3] == ':' && isDigit(s[4]) && isDigit(s[5]):
		m, _ = atoiN(s[4:6])
		n = 6
	case len(s) >= 5 && isDigit(s[3]) && isDigit(s[4]):
		m, _ = atoiN(s[3:5])
		n = 5
	}
	if m > 59 || (n < len(s) && isDigit(s[n])) {
		return 0, 0, false
	}
	off = h*3600 + m*60
	if s[0] == '-' {
		off = -off
	}
	return off, n, true
}

var zoneAbbrevs = map[string]int{
	"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0,
	"BST": 3600, "CET": 3600, "WEST": 3600, "CEST": 7200, "EET": 7200, "EEST": 10800, "MSK": 10800,
	"EST": -5 * 3600, "EDT": -4 * 3600, "CST": -6 * 3600, "CDT": -5 * 3600,
	"MST": -7 * 3600, "MDT": -6 * 3600, "PST": -8 * 3600, "PDT": -7 * 3600,
	"AKST": -9 * 3600, "AKDT": -8 * 3600, "HST": -10 * 3600,
	"JST": 9 * 3600, "KST": 9 * 3600, "AEST": 10 * 3600, "AEDT": 11 * 3600, "NZST": 12 * 3600, "NZDT": 13 * 3600,
}

func zoneAbbrev(s []byte) (int, bool) {
	if len(s) > 4 {
		return 0, false
	}
	var buf [4]byte
	for i, c := range s {
		buf[i] = upper(c)
	}
	off, ok := zoneAbbrevs[string(buf[:len(s)])]
	return off, ok
}

// parseEpoch parses a Unix time in s, ms, µs or ns (by magnitude), with optional
// decimals or exponent.
func parseEpoch(s []byte) (time.Time, bool) {
	i := 0
	var ip uint64
	for i < len(s) && isDigit(s[i]) {
		if i >= 20 {
			return time.Time{}, false
		}
		d := uint64(s[i] - '0')
		if ip > (1<<64-1-d)/10 {
			return time.Time{}, false
		}
		ip = ip*10 + d
		i++
	}
	if i == 0 {
		return time.Time{}, false
	}
	var frac []byte
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		frac = s[i+1 : j]
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		f, err := strconv.ParseFloat(string(s), 64)
		if err != nil || f < 1e8 || f >= 1e20 {
			return time.Time{}, false
		}
		switch {
		case f < 1e11:
			sec := int64(f)
			return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
		case f < 1e14:
			return time.UnixMicro(int64(f * 1e3)).UTC(), true
		case f < 1e17:
			return time.UnixMicro(int64(f)).UTC(), true
		default:
			if f > 9.2e18 {
				return time.Time{}, false
			}
			return time.Unix(0, int64(f)).UTC(), true
		}
	}
	if i != len(s) || ip < 1e8 {
		return time.Time{}, false
	}
	switch {
	case ip < 1e11:
		return time.Unix(int64(ip), fracNanos(frac, 9)).UTC(), true
	case ip < 1e14:
		return time.Unix(int64(ip/1e3), int64(ip%1e3)*1e6+fracNanos(frac, 6)).UTC(), true
	case ip < 1e17:
		return time.Unix(int64(ip/1e6), int64(ip%1e6)*1e3+fracNanos(frac, 3)).UTC(), true
	default:
		if ip > 1<<63-1 {
			return time.Time{}, false
		}
		return time.Unix(0, int64(ip)).UTC(), true
	}
}

// fracNanos converts the decimal digits of a fraction of a unit with 10^digits
// nanoseconds into nanoseconds.
func fracNanos(frac []byte, digits int) int64 {
	var n int64
	for i := 0; i < digits; i++ {
		n *= 10
		if i < len(frac) {
			n += int64(frac[i] - '0')
		}
	}
	return n
}

// parseCLFTime parses the common log format date 10/Oct/2000:13:55:36 -0700.
func parseCLFTime(s []byte, loc *time.Location) (time.Time, bool) {
	if len(s) < 20 || s[2] != '/' || s[6] != '/' || s[11] != ':' {
		return time.Time{}, false
	}
	day, ok1 := atoiN(s[0:2])
	month := monthOf(s[3:6])
	year, ok2 := atoiN(s[7:11])
	if !ok1 || !ok2 || month == 0 || day < 1 || day > daysIn(month, year) {
		return time.Time{}, false
	}
	hour, min, sec, nsec, n, ok := parseClock(s[12:])
	if !ok || n < 8 {
		return time.Time{}, false
	}
	z, ok := parseZone(s[12+n:], loc)
	if !ok {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, min, sec, nsec, z), true
}

// parseSyslogTime parses "Oct 11 22:14:15[.frac]", "Oct  1 22:14:15" and
// "Oct 11 2026 22:14:15"; year-less dates get the year nearest ref.
func parseSyslogTime(s []byte, loc *time.Location, ref time.Time) (time.Time, bool) {
	if len(s) < 14 || s[3] != ' ' {
		return time.Time{}, false
	}
	month := monthOf(s[0:3])
	if month == 0 {
		return time.Time{}, false
	}
	i := 4
	if s[i] == ' ' {
		i++
	}
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j == i || j-i > 2 || j >= len(s) || s[j] != ' ' {
		return time.Time{}, false
	}
	day, _ := atoiN(s[i:j])
	rest := s[j+1:]
	year := 0
	if len(rest) > 5 && isDigit(rest[0]) && isDigit(rest[1]) && isDigit(rest[2]) && isDigit(rest[3]) && rest[4] == ' ' {
		year, _ = atoiN(rest[:4])
		rest = rest[5:]
	}
	hour, min, sec, nsec, n, ok := parseClock(rest)
	if !ok || n < 8 {
		return time.Time{}, false
	}
	rest = rest[n:]
	if year == 0 && len(rest) > 5 && rest[0] == ' ' && isDigit(rest[1]) && isDigit(rest[2]) && isDigit(rest[3]) && isDigit(rest[4]) && (len(rest) == 5 || rest[5] == ' ') {
		year, _ = atoiN(rest[1:5])
		rest = rest[5:]
	}
	z, ok := parseZone(rest, loc)
	if !ok || day < 1 || day > 31 {
		return time.Time{}, false
	}
	if year != 0 {
		if day > daysIn(month, year) {
			return time.Time{}, false
		}
		return time.Date(year, time.Month(month), day, hour, min, sec, nsec, z), true
	}
	return nearestYear(month, day, hour, min, sec, nsec, z, ref)
}

// nearestYear returns the date in the year (previous, current or next of ref)
// that is nearest ref; false when none of them has that day (Feb 29).
func nearestYear(month, day, hour, min, sec, nsec int, z *time.Location, ref time.Time) (time.Time, bool) {
	var best time.Time
	var bestD time.Duration
	for y := ref.Year() - 1; y <= ref.Year()+1; y++ {
		if day > daysIn(month, y) {
			continue
		}
		t := time.Date(y, time.Month(month), day, hour, min, sec, nsec, z)
		d := t.Sub(ref)
		if d < 0 {
			d = -d
		}
		if best.IsZero() || d < bestD {
			best, bestD = t, d
		}
	}
	return best, !best.IsZero()
}

// parseKlogTime parses the header of klog / glog lines (Kubernetes components):
// "I1125 08:14:06.123456" (severity letter, mmdd, time; year-less). It returns
// the number of bytes used.
func parseKlogTime(s []byte, loc *time.Location, ref time.Time) (time.Time, int, bool) {
	if len(s) < 14 || (s[0] != 'I' && s[0] != 'W' && s[0] != 'E' && s[0] != 'F') || s[5] != ' ' {
		return time.Time{}, 0, false
	}
	month, ok1 := atoiN(s[1:3])
	day, ok2 := atoiN(s[3:5])
	if !ok1 || !ok2 || month < 1 || month > 12 || day < 1 || day > 31 {
		return time.Time{}, 0, false
	}
	hour, min, sec, nsec, n, ok := parseClock(s[6:])
	if !ok || n < 8 {
		return time.Time{}, 0, false
	}
	t, ok := nearestYear(month, day, hour, min, sec, nsec, loc, ref)
	return t, 6 + n, ok
}

// namedLayouts are tried, in order, for times that start with a letter and are not
// syslog dates.
var namedLayouts = []string{
	"Mon Jan _2 15:04:05.999999999 2006",
	"Mon Jan _2 15:04:05.999999999 MST 2006",
	time.RFC1123Z,
	time.RFC1123,
	"Mon, _2 Jan 2006 15:04:05 -0700",
	"Mon, _2 Jan 2006 15:04:05 MST",
	time.RFC850,
	"Jan _2, 2006 15:04:05",
	"Jan _2, 2006 3:04:05 PM",
}

func parseNamedLayouts(s []byte, loc *time.Location) (time.Time, bool) {
	str := string(s)
	for _, l := range namedLayouts {
		if t, err := time.ParseInLocation(l, str, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func monthOf(s []byte) int {
	if len(s) != 3 {
		return 0
	}
	a, b, c := lower(s[0]), lower(s[1]), lower(s[2])
	switch string([]byte{a, b, c}) {
	case "jan":
		return 1
	case "feb":
		return 2
	case "mar":
		return 3
	case "apr":
		return 4
	case "may":
		return 5
	case "jun":
		return 6
	case "jul":
		return 7
	case "aug":
		return 8
	case "sep":
		return 9
	case "oct":
		return 10
	case "nov":
		return 11
	case "dec":
		return 12
	}
	return 0
}

func isWeekday(s []byte) bool {
	for _, d := range [...]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		if eqFold(s, d) {
			return true
		}
	}
	return false
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// atoiN parses an unsigned decimal of exactly len(s) digits.
func atoiN(s []byte) (int, bool) {
	if len(s) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func isAlphaWord(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if !isAlpha(c) {
			return false
		}
	}
	return true
}
