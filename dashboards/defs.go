package dashboards

// The dashboards. SQL names tables as tokenwatch.<table>: the default
// clickhouse.database. Panels count what the SOC sees once, even after a
// replay: base tables are read with FINAL (or through alerts_latest), and the
// aggregate tables count distinct row ids with uniqMerge.

const investigate = "/d/tokenwatch-token/tokenwatch-token-investigation?var-fingerprint=${__value.raw}&${__url_time_range}"

// match selects one token's rows by fingerprint, or by jti when given.
const match = `(fingerprint = '${fingerprint}' OR (jti != '' AND jti = '${jti}'))`

// incidentTypes are the alert types that mean a token is compromised.
const incidentTypes = `('token_leak', 'impossible_travel', 'concurrent_replay', 'leaked_token_replay', 'post_revocation_use', 'expired_token_accepted', 'alg_none_accepted')`

// All returns every dashboard.
func All() []Dashboard {
	return []Dashboard{socOverview(), tokenInvestigation(), appTeams(), hygiene(), pipelineHealth()}
}

func socOverview() Dashboard {
	return Dashboard{
		UID: "tokenwatch-soc", Title: "tokenwatch / SOC overview", Tags: []string{"tokenwatch", "soc"},
		Description: "Alerts, leaking services and suspicious token uses.",
		From:        "now-24h", Refresh: "30s",
		Panels: []Panel{
			{Title: "Open critical/high alerts", Type: "stat", Kind: Stat, W: 6, H: 4, SQL: `SELECT count() AS open_alerts
FROM tokenwatch.alerts_latest
WHERE status = 'open' AND severity IN ('critical', 'high') AND $__timeFilter(event_time)`},
			{Title: "Token uses", Type: "stat", Kind: Stat, W: 6, H: 4, SQL: `SELECT uniqMerge(uses) AS uses
FROM tokenwatch.uses_minutely
WHERE leak = 0 AND $__timeFilter(minute)`},
			{Title: "Distinct tokens used", Type: "stat", Kind: Stat, W: 6, H: 4, SQL: `SELECT uniqMerge(tokens) AS tokens
FROM tokenwatch.uses_minutely
WHERE leak = 0 AND $__timeFilter(minute)`},
			{Title: "Leak sightings", Type: "stat", Kind: Stat, W: 6, H: 4, SQL: `SELECT uniqMerge(leaks) AS leaks
FROM tokenwatch.leaks_hourly
WHERE $__timeFilter(hour)`},
			{Title: "Alerts by type", Type: "timeseries", Kind: TimeSeries, Stack: true, SQL: `SELECT $__timeInterval(minute) AS time, type, uniqMerge(alerts) AS alerts
FROM tokenwatch.alerts_minutely
WHERE $__timeFilter(minute)
GROUP BY time, type
ORDER BY time`},
			{Title: "Alerts by severity", Type: "timeseries", Kind: TimeSeries, Stack: true, SQL: `SELECT $__timeInterval(minute) AS time, severity, uniqMerge(alerts) AS alerts
FROM tokenwatch.alerts_minutely
WHERE $__timeFilter(minute)
GROUP BY time, severity
ORDER BY time`},
			{Title: "Open alerts", Type: "table", Kind: Table, W: 24, H: 10,
				Description: "Newest state of every open alert; click a fingerprint to investigate the token.",
				Want:        []string{"fingerprint", "summary", "severity", "type"},
				Links:       map[string]Link{"fingerprint": {"Investigate this token", investigate}},
				SQL: `SELECT detected_at, severity, type, summary, fingerprint, jti, service,
       update_count AS updates, evidence_count AS uses, id
FROM tokenwatch.alerts_latest
WHERE status = 'open' AND $__timeFilter(event_time)
ORDER BY indexOf(['critical', 'high', 'medium', 'low', 'info'], severity), detected_at DESC
LIMIT 500`},
			{Title: "Top leaking services", Type: "barchart", Kind: Table, Want: []string{"service", "leaks"},
				Options: map[string]any{"xField": "service", "orientation": "horizontal"},
				SQL: `SELECT service, uniqMerge(leaks) AS leaks, uniqMerge(tokens) AS tokens
FROM tokenwatch.leaks_hourly
WHERE $__timeFilter(hour)
GROUP BY service
ORDER BY leaks DESC
LIMIT 10`},
			{Title: "Suspicious uses", Type: "geomap", Kind: Geo, Want: []string{"type", "fingerprint", "uses"},
				Description: "Where the uses behind replay, travel and revocation alerts came from.",
				SQL: `SELECT lat, lon, city, country, type, severity, fingerprint, count() AS uses
FROM
(
    SELECT JSONExtractFloat(e, 'lat') AS lat, JSONExtractFloat(e, 'lon') AS lon,
           JSONExtractString(e, 'city') AS city, JSONExtractString(e, 'country') AS country,
           type, severity, fingerprint
    FROM tokenwatch.alerts_latest
    ARRAY JOIN JSONExtractArrayRaw(evidence) AS e
    WHERE $__timeFilter(event_time) AND type != 'token_leak'
)
WHERE lat != 0 OR lon != 0
GROUP BY lat, lon, city, country, type, severity, fingerprint
ORDER BY uses DESC
LIMIT 1000`},
			{Title: "Uses by country", Type: "table", Kind: Table, Want: []string{"country", "uses"}, SQL: `SELECT country, uniqMerge(uses) AS uses, uniqMerge(tokens) AS tokens
FROM tokenwatch.uses_minutely
WHERE leak = 0 AND $__timeFilter(minute)
GROUP BY country
ORDER BY uses DESC
LIMIT 50`},
		},
	}
}

func tokenInvestigation() Dashboard {
	return Dashboard{
		UID: "tokenwatch-token", Title: "tokenwatch / Token investigation", Tags: []string{"tokenwatch", "soc"},
		Description: "One token's whole story, by fingerprint or jti.",
		From:        "now-7d", Refresh: "",
		Vars: []Variable{
			{Name: "fingerprint", Label: "Fingerprint", Type: "textbox"},
			{Name: "jti", Label: "JWT ID (jti)", Type: "textbox"},
		},
		Panels: []Panel{
			{Title: "Summary", Type: "stat", Kind: Stat, W: 24, H: 4, Want: []string{"uses", "ips", "countries"}, SQL: `SELECT count() AS uses, uniqExact(ip) AS ips, uniqExact(country) AS countries,
       uniqExact(asn) AS asns, countIf(status IN (401, 403)) AS rejected, countIf(leak = 1) AS leak_sightings
FROM tokenwatch.token_events FINAL
WHERE ` + match + ` AND $__timeFilter(event_time)`},
			{Title: "Claims", Type: "table", Kind: Table, W: 24, H: 4, Want: []string{"issuer", "client_id"}, SQL: `SELECT any(kind) AS kind, any(alg) AS alg, any(issuer) AS issuer, any(subject) AS subject,
       any(client_id) AS client_id, any(jti) AS token_jti, any(aud) AS aud, any(scope) AS scope,
       max(iat) AS issued, max(exp) AS expires, max(lifetime) AS lifetime_s, max(sender_constrained) AS bound,
       min(event_time) AS first_seen, max(event_time) AS last_seen
FROM tokenwatch.token_events FINAL
WHERE ` + match},
			{Title: "Uses over time by country", Type: "timeseries", Kind: TimeSeries, Stack: true, SQL: `SELECT $__timeInterval(event_time) AS time, country, count() AS uses
FROM tokenwatch.token_events FINAL
WHERE ` + match + ` AND $__timeFilter(event_time)
GROUP BY time, country
ORDER BY time`},
			{Title: "Where it was used", Type: "geomap", Kind: Geo, Want: []string{"city", "uses"}, SQL: `SELECT lat, lon, city, country, as_org, count() AS uses, min(event_time) AS first, max(event_time) AS last
FROM tokenwatch.token_events FINAL
WHERE ` + match + ` AND has_location = 1 AND $__timeFilter(event_time)
GROUP BY lat, lon, city, country, as_org
ORDER BY first`},
			{Title: "Timeline of every use", Type: "table", Kind: Table, W: 24, H: 10,
				Want: []string{"event_time", "ip", "country", "user_agent", "status"}, SQL: `SELECT event_time, if(leak = 1, 'leak', 'use') AS sighting, status, method, path, service,
       IPv6NumToString(ip) AS ip, asn, as_org, country, city, user_agent, source, partition, offset
FROM tokenwatch.token_events FINAL
WHERE ` + match + ` AND $__timeFilter(event_time)
ORDER BY event_time DESC
LIMIT 1000`},
			{Title: "Networks and countries", Type: "table", Kind: Table, Want: []string{"asn", "as_org", "country", "uses"}, SQL: `SELECT asn, as_org, country, count() AS uses, uniqExact(ip) AS ips,
       min(event_time) AS first, max(event_time) AS last
FROM tokenwatch.token_events FINAL
WHERE ` + match + ` AND leak = 0 AND $__timeFilter(event_time)
GROUP BY asn, as_org, country
ORDER BY uses DESC`},
			{Title: "Alerts", Type: "table", Kind: Table, Want: []string{"type", "summary"}, SQL: `SELECT detected_at, severity, type, status, summary, update_count AS updates, id
FROM tokenwatch.alerts_latest
WHERE ` + match + `
ORDER BY detected_at DESC`},
			{Title: "Evidence", Type: "table", Kind: Table, W: 24,
				Description: "The uses each alert cites, as recorded in its evidence.",
				Want:        []string{"type", "time", "ip", "city"}, SQL: `SELECT type, JSONExtractString(e, 'time') AS time, JSONExtractString(e, 'ip') AS ip,
       JSONExtractUInt(e, 'asn') AS asn, JSONExtractString(e, 'as_org') AS as_org,
       JSONExtractString(e, 'country') AS country, JSONExtractString(e, 'city') AS city,
       JSONExtractString(e, 'user_agent') AS user_agent, JSONExtractUInt(e, 'status') AS status,
       concat(JSONExtractString(e, 'topic'), JSONExtractString(e, 'file')) AS source,
       JSONExtractInt(e, 'partition') AS partition, JSONExtractInt(e, 'offset') + JSONExtractInt(e, 'line') AS offset
FROM tokenwatch.alerts_latest
ARRAY JOIN JSONExtractArrayRaw(evidence) AS e
WHERE ` + match + `
ORDER BY time`},
			{Title: "Leak sightings", Type: "table", Kind: Table, Want: []string{"service", "redacted", "source"}, SQL: `SELECT event_time, service, host, source, partition, offset, rule, param, redacted
FROM tokenwatch.findings FINAL
WHERE ` + match + `
ORDER BY event_time DESC
LIMIT 200`},
			{Title: "Revocation status", Type: "table", Kind: Table, Want: []string{"revoked_at", "reason"}, SQL: `SELECT revoked_at, reason, issuer, jti, source, partition, offset
FROM tokenwatch.revocations FINAL
WHERE ` + match + `
ORDER BY revoked_at`},
			{Title: "Deliveries (webhooks, revocation requests)", Type: "table", Kind: Table, W: 24, Want: []string{"sink", "outcome"}, SQL: `SELECT time, sink, sink_kind, attempt, status_code, outcome, error, alert_id
FROM tokenwatch.deliveries FINAL
WHERE alert_id IN (SELECT id FROM tokenwatch.alerts_latest WHERE ` + match + `)
ORDER BY time`},
		},
	}
}

func appTeams() Dashboard {
	const svc = `service IN (${service:singlequote})`
	return Dashboard{
		UID: "tokenwatch-apps", Title: "tokenwatch / App teams: leaks", Tags: []string{"tokenwatch", "appsec"},
		Description: "Which services leak credentials into their logs, and since when.",
		From:        "now-7d", Refresh: "5m",
		Vars: []Variable{{Name: "service", Label: "Service", Type: "query", Multi: true,
			Query: "SELECT DISTINCT service FROM tokenwatch.leaks_hourly WHERE $__timeFilter(hour) ORDER BY service"}},
		Panels: []Panel{
			{Title: "Leaks per service", Type: "timeseries", Kind: TimeSeries, Stack: true, W: 24, SQL: `SELECT $__timeInterval(hour) AS time, service, uniqMerge(leaks) AS leaks
FROM tokenwatch.leaks_hourly
WHERE ` + svc + ` AND $__timeFilter(hour)
GROUP BY time, service
ORDER BY time`},
			{Title: "Leaks per source", Type: "timeseries", Kind: TimeSeries, Stack: true, SQL: `SELECT $__timeInterval(hour) AS time, source, uniqMerge(leaks) AS leaks
FROM tokenwatch.leaks_hourly
WHERE ` + svc + ` AND $__timeFilter(hour)
GROUP BY time, source
ORDER BY time`},
			{Title: "Leaks per rule", Type: "timeseries", Kind: TimeSeries, Stack: true, SQL: `SELECT $__timeInterval(hour) AS time, rule, uniqMerge(leaks) AS leaks
FROM tokenwatch.leaks_hourly
WHERE ` + svc + ` AND $__timeFilter(hour)
GROUP BY time, rule
ORDER BY time`},
			{Title: "Leaks per service per day", Type: "table", Kind: Table, Want: []string{"day", "service", "leaks", "tokens"}, SQL: `SELECT toDate(hour) AS day, service, uniqMerge(leaks) AS leaks, uniqMerge(tokens) AS tokens
FROM tokenwatch.leaks_hourly
WHERE ` + svc + ` AND $__timeFilter(hour)
GROUP BY day, service
ORDER BY day DESC, leaks DESC`},
			{Title: "Newest redacted examples", Type: "table", Kind: Table, W: 24, H: 10,
				Want: []string{"redacted", "service", "rule"}, SQL: `SELECT event_time, service, host, source, rule, kind, param, redacted, iss AS issuer, client_id,
       if(expired = 1, 'expired', 'live') AS state, partition, offset
FROM tokenwatch.findings FINAL
WHERE ` + svc + ` AND $__timeFilter(event_time)
ORDER BY event_time DESC
LIMIT 100`},
			{Title: "Started leaking (first leak in the last day of the range)", Type: "table", Kind: Table,
				Want: []string{"service", "first_leak", "leaks"}, SQL: `SELECT service, min(hour) AS first_leak, uniqMerge(leaks) AS leaks
FROM tokenwatch.leaks_hourly
WHERE $__timeFilter(hour)
GROUP BY service
HAVING min(hour) >= $__toTime - INTERVAL 1 DAY
ORDER BY first_leak DESC`},
			{Title: "Stopped leaking (no leak in the last 3 days of the range)", Type: "table", Kind: Table,
				Want: []string{"service", "last_leak", "leaks"}, SQL: `SELECT service, max(hour) AS last_leak, uniqMerge(leaks) AS leaks
FROM tokenwatch.leaks_hourly
WHERE $__timeFilter(hour)
GROUP BY service
HAVING max(hour) < $__toTime - INTERVAL 3 DAY
ORDER BY last_leak DESC`},
		},
	}
}

// hygiene holds the token-governance KPIs (issue 9).
func hygiene() Dashboard {
	return Dashboard{
		UID: "tokenwatch-hygiene", Title: "tokenwatch / Token hygiene KPIs", Tags: []string{"tokenwatch", "iam"},
		Description: "How tokens are issued and used: lifetimes, sender constraint, scope breadth, time to revoke.",
		From:        "now-7d", Refresh: "5m",
		Panels: []Panel{
			{Title: "Issued access-token lifetime per client", Type: "table", Kind: Table, W: 24,
				Description: "Per distinct token seen in use (exp - iat).",
				Want:        []string{"issuer", "client_id", "avg_lifetime_s", "p95_lifetime_s"}, Unit: "s", SQL: `SELECT issuer, client_id, round(avg(token_lifetime)) AS avg_lifetime_s,
       quantile(0.95)(token_lifetime) AS p95_lifetime_s, max(token_lifetime) AS max_lifetime_s, count() AS tokens
FROM
(
    SELECT fingerprint, any(issuer) AS issuer, any(client_id) AS client_id, max(lifetime) AS token_lifetime
    FROM tokenwatch.token_events
    WHERE leak = 0 AND lifetime > 0 AND $__timeFilter(event_time)
    GROUP BY fingerprint
)
GROUP BY issuer, client_id
ORDER BY p95_lifetime_s DESC`},
			{Title: "Requests with sender-constrained tokens", Type: "timeseries", Kind: TimeSeries, Unit: "percent",
				Description: "Share of uses whose token carries a cnf claim (DPoP or mTLS bound).", SQL: `SELECT $__timeInterval(event_time) AS time, round(100 * avg(sender_constrained), 2) AS sender_constrained_pct
FROM tokenwatch.token_events
WHERE leak = 0 AND $__timeFilter(event_time)
GROUP BY time
ORDER BY time`},
			{Title: "Top clients by scope breadth", Type: "table", Kind: Table,
				Want: []string{"client_id", "distinct_scopes"}, SQL: `SELECT client_id, issuer, length(groupUniqArrayArray(scope)) AS distinct_scopes,
       max(length(scope)) AS max_scopes_per_token, uniqExact(fingerprint) AS tokens
FROM tokenwatch.token_events
WHERE leak = 0 AND client_id != '' AND $__timeFilter(event_time)
GROUP BY client_id, issuer
ORDER BY distinct_scopes DESC
LIMIT 20`},
			{Title: "Mean time to revoke", Type: "stat", Kind: Stat, Unit: "s",
				Description: "From a compromise alert to the first revocation request delivered (RFC 7009 / SSF), and to the first use the service rejected (401/403).",
				Want:        []string{"to_revocation_sent_s", "to_first_rejected_use_s"}, SQL: `SELECT
(
    SELECT round(avg(dateDiff('millisecond', a.detected_at, d.sent)) / 1000, 1)
    FROM (SELECT id, detected_at FROM tokenwatch.alerts_latest WHERE type IN ` + incidentTypes + ` AND $__timeFilter(event_time)) AS a
    INNER JOIN
    (
        SELECT alert_id, min(time) AS sent
        FROM tokenwatch.deliveries FINAL
        WHERE sink_kind IN ('rfc7009', 'ssf') AND outcome = 'delivered'
        GROUP BY alert_id
    ) AS d ON d.alert_id = a.id
) AS to_revocation_sent_s,
(
    SELECT round(avg(dateDiff('millisecond', detected_at, rejected)) / 1000, 1)
    FROM
    (
        SELECT a.fingerprint, a.detected_at, min(e.event_time) AS rejected
        FROM
        (
            SELECT fingerprint, min(detected_at) AS detected_at
            FROM tokenwatch.alerts_latest
            WHERE type IN ` + incidentTypes + ` AND $__timeFilter(event_time)
            GROUP BY fingerprint
        ) AS a
        INNER JOIN
        (
            SELECT toString(fingerprint) AS fingerprint, event_time
            FROM tokenwatch.token_events
            WHERE leak = 0 AND status IN (401, 403)
        ) AS e ON e.fingerprint = a.fingerprint
        WHERE e.event_time >= a.detected_at
        GROUP BY a.fingerprint, a.detected_at
    )
) AS to_first_rejected_use_s`},
			{Title: "Posture findings by type", Type: "table", Kind: Table, Want: []string{"type", "findings"},
				Description: "Policy findings (issue 9 types): everything that is not an incident.", SQL: `SELECT type, severity, count() AS findings, uniqExact(client_id) AS clients, max(detected_at) AS last
FROM tokenwatch.alerts_latest
WHERE type NOT IN ` + incidentTypes + ` AND $__timeFilter(event_time)
GROUP BY type, severity
ORDER BY findings DESC`},
		},
	}
}

func pipelineHealth() Dashboard {
	return Dashboard{
		UID: "tokenwatch-pipeline", Title: "tokenwatch / Pipeline health", Tags: []string{"tokenwatch", "ops"},
		Description: "Throughput, lag, drops, ClickHouse writes and alert deliveries (Prometheus).",
		From:        "now-1h", Refresh: "30s",
		Panels: []Panel{
			{Title: "Records committed per second", Type: "timeseries", Unit: "ops", Prom: []PromTarget{
				{`sum by (source_kind) (rate(tokenwatch_pipeline_records_total[$__rate_interval]))`, "{{source_kind}}"}}},
			{Title: "Input MB/s (read and committed)", Type: "timeseries", Unit: "MBs", Prom: []PromTarget{
				{`sum by (source_type) (rate(tokenwatch_ingest_bytes_total[$__rate_interval])) / 1e6`, "read {{source_type}}"},
				{`sum(rate(tokenwatch_pipeline_bytes_total[$__rate_interval])) / 1e6`, "committed"}}},
			{Title: "Kafka consumer lag", Type: "timeseries", Unit: "short", Prom: []PromTarget{
				{`sum by (topic) (tokenwatch_ingest_kafka_lag_messages)`, "{{topic}}"}}},
			{Title: "Scan MB/s (bytes committed per second spent scanning)", Type: "timeseries", Unit: "MBs",
				Description: "Scanner throughput while it runs: committed bytes over time spent in the scan stage.", Prom: []PromTarget{
					{`sum(rate(tokenwatch_pipeline_bytes_total[$__rate_interval])) / sum(rate(tokenwatch_pipeline_stage_seconds_sum{stage="scan"}[$__rate_interval])) / 1e6`, "scan MB/s"}}},
			{Title: "Stage latency p99", Type: "timeseries", Unit: "s", Prom: []PromTarget{
				{`histogram_quantile(0.99, sum by (le, stage) (rate(tokenwatch_pipeline_stage_seconds_bucket[$__rate_interval])))`, "{{stage}}"}}},
			{Title: "Dropped and malformed records", Type: "timeseries", Unit: "ops", Prom: []PromTarget{
				{`sum by (reason) (rate(tokenwatch_ingest_records_malformed_total[$__rate_interval]))`, "malformed {{reason}}"},
				{`sum(rate(tokenwatch_ingest_records_truncated_total[$__rate_interval]))`, "truncated"},
				{`sum(rate(tokenwatch_pipeline_batches_failed_total[$__rate_interval]))`, "failed batches"},
				{`sum(rate(tokenwatch_ingest_read_errors_total[$__rate_interval]))`, "read errors"}}},
			{Title: "Alerts raised by type", Type: "timeseries", Unit: "short", Stack: true, Prom: []PromTarget{
				{`sum by (type) (increase(tokenwatch_anomaly_alerts_total[$__rate_interval]))`, "{{type}}"}}},
			{Title: "ClickHouse rows written per second", Type: "timeseries", Unit: "rowsps", Prom: []PromTarget{
				{`sum by (table) (rate(tokenwatch_store_rows_written_total[$__rate_interval]))`, "{{table}}"}}},
			{Title: "ClickHouse insert latency p50/p99", Type: "timeseries", Unit: "s", Prom: []PromTarget{
				{`histogram_quantile(0.5, sum by (le) (rate(tokenwatch_store_insert_duration_seconds_bucket[$__rate_interval])))`, "p50"},
				{`histogram_quantile(0.99, sum by (le) (rate(tokenwatch_store_insert_duration_seconds_bucket[$__rate_interval])))`, "p99"}}},
			{Title: "ClickHouse insert errors and backlog", Type: "timeseries", Unit: "short", Prom: []PromTarget{
				{`sum by (table) (rate(tokenwatch_store_insert_errors_total[$__rate_interval]))`, "errors/s {{table}}"},
				{`tokenwatch_store_pending_rows`, "pending rows"},
				{`rate(tokenwatch_store_backpressure_seconds_total[$__rate_interval])`, "backpressure (s/s)"}}},
			{Title: "Webhook and revocation deliveries", Type: "timeseries", Unit: "ops", Stack: true, Prom: []PromTarget{
				{`sum by (sink, outcome) (rate(tokenwatch_alerts_deliveries_total[$__rate_interval]))`, "{{sink}} {{outcome}}"}}},
			{Title: "Dead letters and open circuits", Type: "timeseries", Unit: "short", Prom: []PromTarget{
				{`sum by (sink) (increase(tokenwatch_alerts_dead_letters_total[$__rate_interval]))`, "dead letters {{sink}}"},
				{`sum by (sink) (tokenwatch_alerts_circuit_open)`, "circuit open {{sink}}"}}},
			{Title: "Token state and GeoIP cache", Type: "timeseries", Unit: "short", Prom: []PromTarget{
				{`sum(tokenwatch_anomaly_tokens)`, "tokens in state"},
				{`sum(rate(tokenwatch_anomaly_evictions_total[$__rate_interval]))`, "evictions/s"},
				{`sum by (result) (rate(tokenwatch_enrich_lookups_total[$__rate_interval]))`, "geoip {{result}}/s"}}},
			{Title: "Readiness", Type: "stat", Unit: "short", W: 24, H: 4, Prom: []PromTarget{
				{`min by (check) (tokenwatch_telemetry_check_up)`, "{{check}}"}}},
		},
	}
}
