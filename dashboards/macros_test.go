package dashboards

import (
	"strings"
	"testing"
	"time"
)

func testQuery() Query {
	return Query{
		From:     time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC),
		To:       time.Date(2026, 11, 25, 10, 0, 0, 500e6, time.UTC),
		Interval: 5 * time.Minute,
		Vars:     map[string][]string{"fingerprint": {"00ff"}, "service": {"checkout", "o'brien"}},
	}
}

func TestExpandSQL(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		got, err := ExpandSQL(in, testQuery())
		if err != nil {
			t.Fatalf("ExpandSQL(%q): %v", in, err)
		}
		if got != want {
			t.Fatalf("ExpandSQL(%q)\n got %q\nwant %q", in, got, want)
		}
	}
	// Plugin macros, as grafana/clickhouse-datasource pkg/macros expands them.
	f("WHERE $__timeFilter(event_time)", "WHERE event_time >= toDateTime(1795514400) AND event_time <= toDateTime(1795600800)")
	f("$__timeFilter_ms(t)", "t >= fromUnixTimestamp64Milli(1795514400000) AND t <= fromUnixTimestamp64Milli(1795600800500)")
	f("$__fromTime, $__toTime", "toDateTime(1795514400), toDateTime(1795600800)")
	f("$__fromTime_ms", "fromUnixTimestamp64Milli(1795514400000)")
	f("$__timeInterval(minute)", "toStartOfInterval(toDateTime(minute), INTERVAL 300 second)")
	f("$__timeInterval_ms(t)", "toStartOfInterval(toDateTime64(t, 3), INTERVAL 300000 millisecond)")
	f("$__interval_s", "300")
	f("$__dateFilter(d)", "d >= toDate('2026-11-24') AND d <= toDate('2026-11-25')")
	f("$__dt(d, t)", "(d >= toDate('2026-11-24') AND d <= toDate('2026-11-25')) AND (t >= toDateTime(1795514400) AND t <= toDateTime(1795600800))")
	f("$__timeFilter(toDateTime(x, 'UTC'))", "toDateTime(x, 'UTC') >= toDateTime(1795514400) AND toDateTime(x, 'UTC') <= toDateTime(1795600800)")
	// Grafana variables.
	f("fingerprint = '${fingerprint}'", "fingerprint = '00ff'")
	f("fingerprint = '$fingerprint'", "fingerprint = '00ff'")
	f("service IN (${service:singlequote})", `service IN ('checkout','o\'brien')`)
	f("service IN (${service:sqlstring})", `service IN ('checkout','o''brien')`)
	f("${service:csv}", "checkout,o'brien")
	f("$__from-$__to", "1795514400000-1795600800500")
}

func TestExpandSQLErrors(t *testing.T) {
	for in, want := range map[string]string{
		"$nope":                "unknown variable",
		"$__timeFilter()":      "expected 1 argument",
		"$__timeFilter(a, b)":  "expected 1 argument",
		"$__timeFilter(a":      "unbalanced",
		"$__bogus":             "unknown macro",
		"${service:json}":      "unsupported format",
		"$__dateTimeFilter(a)": "expected 2 argument",
	} {
		if _, err := ExpandSQL(in, testQuery()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ExpandSQL(%q) = %v, want error %q", in, err, want)
		}
	}
}

func TestIntervalAtLeastOneSecond(t *testing.T) {
	q := testQuery()
	q.Interval = 10 * time.Millisecond
	got, err := ExpandSQL("$__interval_s $__timeInterval(t)", q)
	if err != nil || got != "1 toStartOfInterval(toDateTime(t), INTERVAL 1 second)" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// FuzzExpandSQL: dashboard SQL is ours, but the expander must never panic
// or loop on any input.
func FuzzExpandSQL(f *testing.F) {
	for _, s := range []string{"$__timeFilter(x)", "${service:singlequote}", "$__dt(a,(b))", "$__timeInterval((((", "$$$__", "${", "$__fromTime_ms)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := ExpandSQL(s, testQuery())
		if err == nil && strings.Contains(out, "$__timeFilter(") {
			t.Fatalf("unexpanded macro in %q", out)
		}
	})
}
