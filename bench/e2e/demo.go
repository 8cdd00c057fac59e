package main

import (
	"context"
	"fmt"
	"github.com/tokenwatch/tokenwatch/alerts/receiver"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/bench/scenario"
)

// demoKey is `tokenwatch demo`'s fingerprint key; the scenario's truth uses it.
const demoKey = "tokenwatch-demo-key"

// runDemo is `make demo-stack`: the demo scenario through Kafka and ClickHouse.
// It generates the scenario, runs `tokenwatch migrate` (current ClickHouse) and
// `tokenwatch run` with the three Kafka topics, ClickHouse and alerts to a
// local signed-webhook receiver, produces the records in event-time order,
// waits until they are consumed and the alerts delivered, and prints what was
// caught (scored against what was planted) and rows read back from ClickHouse.
func runDemo(ctx context.Context, o options) error {
	timeout, err := time.ParseDuration(o.timeout)
	if err != nil {
		return usageError{fmt.Errorf("-timeout: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "demo-stack: "+f+"\n", a...) }
	bin := mustAbs(o.bin)
	stamp := time.Now().Unix()

	// The database keeps its data for the dashboards (they read "tokenwatch").
	db := o.database
	ch, err := openClickHouse(ctx, o.clickhouse, o.chUser, o.chPassword, db, o.schema18)
	if err != nil {
		return err
	}
	defer ch.close()
	if ch.legacy {
		logf("ClickHouse %s is older than 20.x: created the 18.16 variant of the tables in %s (no migrations)", ch.version, db)
	}
	sc := scenario.DefaultConfig()
	sc.Users, sc.Seed, sc.Key = o.demoUsers, o.seed, []byte(demoKey)
	c, err := loadScenario(filepath.Join(o.cacheDir, fmt.Sprintf("demo-u%d-s%d", sc.Users, sc.Seed)), sc, logf)
	if err != nil {
		return err
	}
	prefix := fmt.Sprintf("tokenwatch-demo-%d", stamp)
	tp := newTopics(prefix)
	// One partition per topic keeps each topic in event-time order.
	parts := map[string]int{tp.Auth: 1, tp.App: 1, tp.Revocation: 1}
	for _, t := range []string{tp.Auth, tp.App, tp.Revocation, tp.Outbox, tp.DLQ} {
		if err := createTopic(ctx, o.brokers, t, 1); err != nil {
			return err
		}
	}
	recv, err := receiver.Start(nil)
	if err != nil {
		return err
	}
	defer recv.Close()
	runDir := filepath.Join(o.cacheDir, "demo-run-"+strconv.FormatInt(stamp, 10))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	group := prefix
	if err := createStateTopic(ctx, o.brokers, group); err != nil {
		return err
	}
	cfgPath := filepath.Join(runDir, "tokenwatch.yaml")
	if err := writeConfig(cfgPath, twConfig{
		Broker: o.brokers, Group: group, Topics: tp, ClickHouse: o.clickhouse, DB: db, CHUser: o.chUser, Migrate: false, NoStateLog: o.noStateLog,
		WebhookURL: recv.URL, Secret: recv.Secret, StateFile: filepath.Join(runDir, "alerts-state.json"), Key: demoKey,
		Dir: mustAbs(c.dir), TrustedProxies: scenario.TrustedProxies,
	}); err != nil {
		return err
	}
	if !ch.legacy {
		logf("tokenwatch migrate --config %s", cfgPath)
		p, err := startTokenwatch(bin, []string{"migrate", "--config", cfgPath}, filepath.Join(runDir, "migrate.log"), o.chPassword)
		if err != nil {
			return err
		}
		if err := <-p.done; err != nil {
			b, _ := os.ReadFile(filepath.Join(runDir, "migrate.log"))
			return fmt.Errorf("tokenwatch migrate: %v\n%s", err, b)
		}
		p.log.Close()
	}
	logPath := filepath.Join(runDir, "tokenwatch.log")
	logf("tokenwatch run --config %s (log: %s)", cfgPath, logPath)
	p, err := startTokenwatch(bin, []string{"run", "--config", cfgPath}, logPath, o.chPassword)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = p.stop(30 * time.Second)
		}
	}()
	// Produce in event-time order, a chunk at a time, each once the one
	// before it is consumed: the three topics are then read in event-time
	// order to within a chunk (a few minutes of event time), as live
	// traffic arrives, so a revocation is seen before the use that follows it.
	const chunk = 1000
	total := len(c.recs)
	logf("producing %d records (%.1f MB) in event-time order to %s, %s, %s", total, float64(c.bytes)/1e6, tp.Auth, tp.App, tp.Revocation)
	start := time.Now()
	cl := &kafka.Client{Addr: kafka.TCP(o.brokers), Timeout: 10 * time.Second}
	last := time.Now()
	for done := 0; ; {
		n, err := committed(ctx, cl, group, parts)
		if err == nil && n >= int64(done) {
			if done == total {
				break
			}
			end := min(done+chunk, total)
			if err := produceCorpus(ctx, o.brokers, tp, c.recs[done:end]); err != nil {
				return err
			}
			done = end
			continue
		}
		if ended, werr := p.exited(); ended {
			return fmt.Errorf("tokenwatch run exited early (%v); see %s", werr, logPath)
		}
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "  %3.0f%%  %d/%d records consumed  %d webhooks received\n", 100*float64(n)/float64(total), n, total, recv.Count())
		}
		if ctx.Err() != nil {
			return fmt.Errorf("timed out with %d/%d records committed: %w", n, total, ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	// The dispatcher runs after the commits: wait until the webhooks stop coming.
	for prev, quiet := -1, 0; quiet < 15; time.Sleep(200 * time.Millisecond) {
		if n := recv.Count(); n != prev {
			prev, quiet = n, 0
		} else {
			quiet++
		}
	}
	stopped = true
	if err := p.stop(90 * time.Second); err != nil {
		logf("tokenwatch stop: %v", err)
	}
	fmt.Fprintf(os.Stderr, "  100%%  %d/%d records committed  %d webhooks received\n", total, total, recv.Count())

	delivered := recv.Alerts()
	sort.SliceStable(delivered, func(i, j int) bool { return delivered[i].EventTime.Before(delivered[j].EventTime) })
	scoreAlerts := make([]scenario.Alert, len(delivered))
	for i, a := range delivered {
		scoreAlerts[i] = scenario.Alert{ID: a.ID, Type: a.Type, Fingerprint: a.Fingerprint, ClientID: a.ClientID, Service: a.Service, EventTime: a.EventTime, Summary: a.Summary}
	}
	score := scenario.Evaluate(c.truth, scoreAlerts)
	w := os.Stdout
	fmt.Fprintf(w, "\nThrough Kafka (%s) and ClickHouse %s (%s): %d records (%.1f MB) consumed in %s.\n",
		o.brokers, ch.version, o.clickhouse, total, float64(c.bytes)/1e6, elapsed.Round(time.Millisecond))
	printAlerts(w, delivered, int(recv.Rejected.Load()))
	fmt.Fprintf(w, "\nScored against what the generator planted:\n")
	fmt.Fprintf(w, "  incidents caught: %d/%d   false alerts on benign look-alikes and ordinary traffic: %d\n", score.Detected, score.Incidents, len(score.FalseAlerts))
	fmt.Fprintf(w, "  posture cases reported: %d/%d   unplanned posture findings: %d\n", score.PostureDetected, score.PostureCases, len(score.PostureFalse))
	for _, m := range score.Missed {
		fmt.Fprintf(w, "  MISSED %s\n", m.ID)
	}
	for _, a := range score.FalseAlerts {
		fmt.Fprintf(w, "  FALSE %s: %s\n", a.Type, a.Summary)
	}
	ids := make([]string, len(delivered))
	for i, a := range delivered {
		ids[i] = a.ID
	}
	if err := printClickHouse(ctx, w, ch, prefix, ids); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nDashboards: point Grafana's ClickHouse datasource at database %s (docs/dashboards.md).\n", db)
	if len(score.Missed) > 0 || len(score.FalseAlerts) > 0 || len(score.PostureMissed) > 0 || len(score.PostureFalse) > 0 {
		return errFindings
	}
	return nil
}

func printAlerts(w *os.File, delivered []tokenwatch.Alert, rejected int) {
	byType := map[string][]tokenwatch.Alert{}
	for _, a := range delivered {
		byType[a.Type] = append(byType[a.Type], a)
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	sort.Strings(types)
	fmt.Fprintf(w, "\nAlerts delivered to the local webhook receiver (%d, signatures rejected: %d):\n", len(delivered), rejected)
	for _, t := range types {
		as := byType[t]
		fmt.Fprintf(w, "\n  %s (%d, %s)\n", t, len(as), as[0].Severity)
		for i, a := range as {
			if i == 3 {
				fmt.Fprintf(w, "    … and %d more\n", len(as)-3)
				break
			}
			fmt.Fprintf(w, "    • %s\n", a.Summary)
		}
	}
}

// printClickHouse reads back what the dashboards show, for this run's rows
// (source topics named prefix-…, the alerts delivered): rows per table, alerts
// per type, leak findings per service, token uses per country.
func printClickHouse(ctx context.Context, w *os.File, ch *chDB, prefix string, alertIDs []string) error {
	db := ch.db
	fromRun := "source LIKE '" + prefix + "-%'"
	inAlerts := "id IN ('" + strings.Join(alertIDs, "','") + "')"
	if len(alertIDs) == 0 {
		inAlerts = "0"
	}
	fmt.Fprintf(w, "\nRead back from ClickHouse (database %s, this run's rows; earlier runs' stay there too):\n", db)
	var counts []string
	for _, q := range []struct{ table, where string }{{"token_events", fromRun}, {"findings", fromRun}, {"alerts", inAlerts}, {"revocations", fromRun}} {
		var n uint64
		if err := ch.conn.QueryRow(ctx, "SELECT count() FROM "+db+"."+q.table+" WHERE "+q.where).Scan(&n); err != nil {
			return fmt.Errorf("count %s.%s: %w", db, q.table, err)
		}
		counts = append(counts, fmt.Sprintf("%s %s", q.table, commas(int64(n))))
	}
	fmt.Fprintf(w, "  rows: %s\n", strings.Join(counts, ", "))
	for _, q := range []struct{ title, sql string }{
		{"alerts per type", "SELECT type, toString(uniqExact(id)) FROM " + db + ".alerts WHERE " + inAlerts + " GROUP BY type ORDER BY type"},
		{"leak findings per service", "SELECT service, toString(uniqExact(row_id)) FROM " + db + ".findings WHERE " + fromRun + " GROUP BY service ORDER BY service"},
		{"token uses per country (top 5)", "SELECT country, toString(uniqExact(row_id)) AS n FROM " + db + ".token_events WHERE leak = 0 AND " + fromRun + " GROUP BY country ORDER BY uniqExact(row_id) DESC LIMIT 5"},
	} {
		rows, err := ch.conn.Query(ctx, q.sql)
		if err != nil {
			return fmt.Errorf("clickhouse %s: %w", q.title, err)
		}
		var items []string
		for rows.Next() {
			var k, n string
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return fmt.Errorf("clickhouse %s: %w", q.title, err)
			}
			if k == "" {
				k = "(none)"
			}
			items = append(items, k+" "+n)
		}
		rows.Close()
		fmt.Fprintf(w, "  %s:\n    %s\n", q.title, strings.Join(items, " · "))
		if err := rows.Err(); err != nil {
			return fmt.Errorf("clickhouse %s: %w", q.title, err)
		}
	}
	return nil
}
