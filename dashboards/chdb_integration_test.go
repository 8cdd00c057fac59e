//go:build integration

package dashboards

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/testenv"
	"github.com/tokenwatch/tokenwatch/store/storetest"
)

// rangeOf turns a dashboard's default range ("now-7d") into times.
func rangeOf(t *testing.T, from string, now time.Time) time.Time {
	t.Helper()
	s := strings.TrimPrefix(from, "now-")
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil {
		t.Fatalf("range %q: %v", from, err)
	}
	unit := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		t.Fatalf("range %q: unknown unit", from)
	}
	return now.Add(-time.Duration(n) * unit)
}

func isNumber(v any) bool {
	switch x := v.(type) {
	case json.Number:
		return true
	case string: // ClickHouse quotes 64-bit integers in JSON
		_, err := strconv.ParseFloat(x, 64)
		return err == nil
	}
	return false
}

func num(v any) float64 {
	f, _ := strconv.ParseFloat(fmt.Sprint(v), 64)
	return f
}

// semantic holds what specific panels must show over the seeded data set.
var semantic = map[string]func(t *testing.T, rows []map[string]any){
	"Started leaking (first leak in the last day of the range)": func(t *testing.T, rows []map[string]any) {
		if len(rows) != 1 || rows[0]["service"] != storetest.NewLeaker {
			t.Errorf("started leaking = %v, want only %s", rows, storetest.NewLeaker)
		}
	},
	"Stopped leaking (no leak in the last 3 days of the range)": func(t *testing.T, rows []map[string]any) {
		if len(rows) != 1 || rows[0]["service"] != storetest.OldLeaker {
			t.Errorf("stopped leaking = %v, want only %s", rows, storetest.OldLeaker)
		}
	},
	"Mean time to revoke": func(t *testing.T, rows []map[string]any) {
		// Seed: revocation delivered 2 min after the replay, alert 0.8 s
		// after it; rejected use 30 min after the replay.
		if got := num(rows[0]["to_revocation_sent_s"]); got != 119.2 {
			t.Errorf("to_revocation_sent_s = %v, want 119.2", got)
		}
		if got := num(rows[0]["to_first_rejected_use_s"]); got != 1799.2 {
			t.Errorf("to_first_rejected_use_s = %v, want 1799.2", got)
		}
	},
	"Revocation status": func(t *testing.T, rows []map[string]any) {
		if len(rows) != 1 || rows[0]["reason"] != "tokenwatch" {
			t.Errorf("revocations = %v, want the one tokenwatch revocation", rows)
		}
	},
	"Summary": func(t *testing.T, rows []map[string]any) {
		// The leaked token: 1 leak sighting + replay + rejected use, once each
		// although the data set was inserted twice.
		if num(rows[0]["uses"]) != 3 || num(rows[0]["rejected"]) != 1 || num(rows[0]["leak_sightings"]) != 1 {
			t.Errorf("summary = %v, want 3 uses, 1 rejected, 1 leak sighting", rows[0])
		}
	},
	"Open critical/high alerts": func(t *testing.T, rows []map[string]any) {
		if num(rows[0]["open_alerts"]) < 3 {
			t.Errorf("open critical/high alerts = %v, want at least 3", rows[0]["open_alerts"])
		}
	},
	"Deliveries (webhooks, revocation requests)": func(t *testing.T, rows []map[string]any) {
		if len(rows) != 3 {
			t.Errorf("deliveries = %d rows, want 3 (retry, delivered, rfc7009)", len(rows))
		}
	},
}

// TestDashboardQueriesCHDB runs every ClickHouse panel query and variable
// query of every dashboard, expanded as Grafana and the plugin do, on chDB
// over the seeded data set (inserted twice, as after a replay), and checks
// each returns rows with the columns its panel needs.
func TestDashboardQueriesCHDB(t *testing.T) {
	c := testenv.NewCHDB(t)
	now := time.Now().UTC()
	storetest.SeedCHDB(t, c, now, 2)
	ran := 0
	for _, d := range All() {
		from := rangeOf(t, d.From, now)
		q := Query{From: from, To: now, Interval: max(now.Sub(from)/200, time.Second), Vars: map[string][]string{
			"fingerprint": {storetest.FP(storetest.LeakedToken).String()},
			"jti":         {storetest.LeakedJTI},
		}}
		for _, v := range d.Vars {
			if v.Type != "query" {
				continue
			}
			sql, err := ExpandSQL(v.Query, q)
			if err != nil {
				t.Fatalf("%s variable %s: %v", d.UID, v.Name, err)
			}
			rows, cols, err := c.Query(sql)
			if err != nil || len(rows) == 0 {
				t.Fatalf("%s variable %s: %v (%d rows)\n%s", d.UID, v.Name, err, len(rows), sql)
			}
			for _, r := range rows { // "All" selects every value
				q.Vars[v.Name] = append(q.Vars[v.Name], fmt.Sprint(r[cols[0]]))
			}
			ran++
		}
		for _, p := range d.Panels {
			if p.SQL == "" {
				continue
			}
			t.Run(d.UID+"/"+p.Title, func(t *testing.T) {
				sql, err := ExpandSQL(p.SQL, q)
				if err != nil {
					t.Fatal(err)
				}
				rows, cols, err := c.Query(sql)
				if err != nil {
					t.Fatalf("%v\n%s", err, sql)
				}
				if len(rows) == 0 {
					t.Fatalf("no rows over the seeded data set\n%s", sql)
				}
				has := map[string]bool{}
				for _, c := range cols {
					has[c] = true
				}
				for _, w := range p.Want {
					if !has[w] {
						t.Errorf("column %q missing; got %v", w, cols)
					}
				}
				switch p.Kind {
				case TimeSeries:
					if cols[0] != "time" {
						t.Errorf("first column %q, want time", cols[0])
					}
					if _, err := time.Parse("2006-01-02 15:04:05", fmt.Sprint(rows[0]["time"])); err != nil {
						t.Errorf("time column value %v: %v", rows[0]["time"], err)
					}
					numeric := false
					for _, c := range cols[1:] {
						numeric = numeric || isNumber(rows[0][c])
					}
					if !numeric {
						t.Errorf("no numeric value column in %v", rows[0])
					}
				case Geo:
					located := 0
					for _, r := range rows {
						if isNumber(r["lat"]) && isNumber(r["lon"]) && (num(r["lat"]) != 0 || num(r["lon"]) != 0) {
							located++
						}
					}
					if located == 0 {
						t.Errorf("no row with lat/lon: %v", rows[0])
					}
				case Stat:
					if len(rows) != 1 {
						t.Errorf("stat query returned %d rows, want 1", len(rows))
					}
					for _, c := range cols {
						if !isNumber(rows[0][c]) {
							t.Errorf("stat column %s = %v (%T), want a number", c, rows[0][c], rows[0][c])
						}
					}
				}
				if check := semantic[p.Title]; check != nil {
					check(t, rows)
				}
			})
			ran++
		}
	}
	if ran < 30 {
		t.Fatalf("only %d queries ran", ran)
	}
}
