package dashboards

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Query is what Grafana and the ClickHouse plugin know when they run a
// panel's SQL: the dashboard time range, the interval Grafana computed for
// the panel, and the values of the dashboard variables.
type Query struct {
	From, To time.Time
	Interval time.Duration
	// Vars maps a variable name to its selected values (several for a
	// multi-value variable).
	Vars map[string][]string
}

// ExpandSQL returns sql as the plugin sends it to ClickHouse: first Grafana's
// template interpolation ($var, ${var}, ${var:format}, global $__from/$__to/
// $__interval), then the plugin's macros. Unknown variables and macros are
// errors (Grafana would leave them in and ClickHouse fail on them).
func ExpandSQL(sql string, q Query) (string, error) {
	s, err := interpolate(sql, q)
	if err != nil {
		return "", err
	}
	return expandMacros(s, q)
}

// varRE matches Grafana variable references: ${name}, ${name:format}, $name.
// Macros ($__timeFilter(…)) are handled after interpolation.
var varRE = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::([A-Za-z0-9_]+))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

func interpolate(sql string, q Query) (string, error) {
	var firstErr error
	out := varRE.ReplaceAllStringFunc(sql, func(m string) string {
		sm := varRE.FindStringSubmatch(m)
		name, format := sm[1], sm[2]
		if sm[3] != "" {
			name = sm[3]
		}
		if strings.HasPrefix(name, "__") {
			switch name {
			case "__from":
				return strconv.FormatInt(q.From.UnixMilli(), 10)
			case "__to":
				return strconv.FormatInt(q.To.UnixMilli(), 10)
			case "__interval_ms":
				return strconv.FormatInt(q.Interval.Milliseconds(), 10)
			}
			return m // a plugin macro: expanded later
		}
		vals, ok := q.Vars[name]
		if !ok {
			if firstErr == nil {
				firstErr = fmt.Errorf("unknown variable %q", name)
			}
			return m
		}
		v, err := formatVar(vals, format)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("variable %s: %w", name, err)
		}
		return v
	})
	return out, firstErr
}

// formatVar applies Grafana's variable formats used by the dashboards.
func formatVar(vals []string, format string) (string, error) {
	switch format {
	case "", "raw":
		if len(vals) == 1 {
			return vals[0], nil
		}
		return "{" + strings.Join(vals, ",") + "}", nil
	case "singlequote":
		q := make([]string, len(vals))
		for i, v := range vals {
			q[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
		}
		return strings.Join(q, ","), nil
	case "sqlstring":
		q := make([]string, len(vals))
		for i, v := range vals {
			q[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
		return strings.Join(q, ","), nil
	case "csv":
		return strings.Join(vals, ","), nil
	}
	return "", fmt.Errorf("unsupported format %q", format)
}

var macroRE = regexp.MustCompile(`\$__([A-Za-z_]+)\b`)

// expandMacros replaces the plugin's macros (grafana/clickhouse-datasource
// pkg/macros): fromTime, toTime, fromTime_ms, toTime_ms, timeFilter,
// timeFilter_ms, dateFilter, dateTimeFilter / dt, timeInterval,
// timeInterval_ms, interval_s.
func expandMacros(sql string, q Query) (string, error) {
	var sb strings.Builder
	for {
		loc := macroRE.FindStringSubmatchIndex(sql)
		if loc == nil {
			sb.WriteString(sql)
			return sb.String(), nil
		}
		sb.WriteString(sql[:loc[0]])
		name := sql[loc[2]:loc[3]]
		rest := sql[loc[1]:]
		var args []string
		if strings.HasPrefix(rest, "(") {
			end := matchParen(rest)
			if end < 0 {
				return "", fmt.Errorf("macro $__%s: unbalanced parentheses", name)
			}
			args = splitArgs(rest[1:end])
			rest = rest[end+1:]
		}
		v, err := macro(name, args, q)
		if err != nil {
			return "", err
		}
		sb.WriteString(v)
		sql = rest
	}
}

// matchParen returns the index of the parenthesis closing s[0], or -1.
func matchParen(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitArgs splits macro arguments on top-level commas.
func splitArgs(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if strings.TrimSpace(s) != "" {
		out = append(out, strings.TrimSpace(s[start:]))
	}
	return out
}

func dt(t time.Time) string   { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
func dt64(t time.Time) string { return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", t.UnixMilli()) }
func date(t time.Time) string { return fmt.Sprintf("toDate('%s')", t.UTC().Format("2006-01-02")) }

func macro(name string, args []string, q Query) (string, error) {
	want := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("macro $__%s: expected %d argument(s), got %d", name, n, len(args))
		}
		return nil
	}
	switch name {
	case "fromTime":
		return dt(q.From), nil
	case "toTime":
		return dt(q.To), nil
	case "fromTime_ms":
		return dt64(q.From), nil
	case "toTime_ms":
		return dt64(q.To), nil
	case "timeFilter":
		if err := want(1); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s >= %s AND %s <= %s", args[0], dt(q.From), args[0], dt(q.To)), nil
	case "timeFilter_ms":
		if err := want(1); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s >= %s AND %s <= %s", args[0], dt64(q.From), args[0], dt64(q.To)), nil
	case "dateFilter":
		if err := want(1); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s >= %s AND %s <= %s", args[0], date(q.From), args[0], date(q.To)), nil
	case "dateTimeFilter", "dt":
		if err := want(2); err != nil {
			return "", err
		}
		return fmt.Sprintf("(%s >= %s AND %s <= %s) AND (%s >= %s AND %s <= %s)",
			args[0], date(q.From), args[0], date(q.To), args[1], dt(q.From), args[1], dt(q.To)), nil
	case "timeInterval":
		if err := want(1); err != nil {
			return "", err
		}
		return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", args[0], int(math.Max(q.Interval.Seconds(), 1))), nil
	case "timeInterval_ms":
		if err := want(1); err != nil {
			return "", err
		}
		return fmt.Sprintf("toStartOfInterval(toDateTime64(%s, 3), INTERVAL %d millisecond)", args[0], int(math.Max(float64(q.Interval.Milliseconds()), 1))), nil
	case "interval_s":
		return strconv.Itoa(int(math.Max(q.Interval.Seconds(), 1))), nil
	}
	return "", fmt.Errorf("unknown macro $__%s", name)
}
