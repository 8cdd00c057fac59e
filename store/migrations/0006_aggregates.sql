-- Dashboard aggregates. Each materialized view counts distinct row ids
-- (uniqState) rather than rows, so a batch replayed after a crash, which the
-- views see a second time, does not inflate the counts.

-- Leaks per service, source, rule and kind per hour (app-teams dashboard).
CREATE TABLE IF NOT EXISTS {{local "leaks_hourly"}}{{on_cluster}}
(
    hour     DateTime('UTC'),
    service  LowCardinality(String),
    source   LowCardinality(String),
    rule     LowCardinality(String),
    kind     LowCardinality(String),
    leaks    AggregateFunction(uniq, UInt64),
    tokens   AggregateFunction(uniq, FixedString(32))
)
ENGINE = {{engine "AggregatingMergeTree" "leaks_hourly" ""}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, service, source, rule, kind)
{{ttl "aggregates" "hour"}};

{{distributed "leaks_hourly" "cityHash64(service)"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{local "leaks_hourly_mv"}}{{on_cluster}}
TO {{local "leaks_hourly"}} AS
SELECT
    toStartOfHour(event_time) AS hour,
    service, source, rule, kind,
    uniqState(row_id)         AS leaks,
    uniqState(fingerprint)    AS tokens
FROM {{local "findings"}}
GROUP BY hour, service, source, rule, kind;

-- Alerts per type and severity per minute (SOC overview).
CREATE TABLE IF NOT EXISTS {{local "alerts_minutely"}}{{on_cluster}}
(
    minute   DateTime('UTC'),
    type     LowCardinality(String),
    severity LowCardinality(String),
    alerts   AggregateFunction(uniq, String)
)
ENGINE = {{engine "AggregatingMergeTree" "alerts_minutely" ""}}
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, type, severity)
{{ttl "aggregates" "minute"}};

{{distributed "alerts_minutely" "cityHash64(type)"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{local "alerts_minutely_mv"}}{{on_cluster}}
TO {{local "alerts_minutely"}} AS
SELECT
    toStartOfMinute(event_time) AS minute,
    type, severity,
    uniqState(id)               AS alerts
FROM {{local "alerts"}}
GROUP BY minute, type, severity;

-- Token uses per minute by service, country and leak flag (SOC overview).
CREATE TABLE IF NOT EXISTS {{local "uses_minutely"}}{{on_cluster}}
(
    minute   DateTime('UTC'),
    leak     UInt8,
    service  LowCardinality(String),
    country  LowCardinality(String),
    uses     AggregateFunction(uniq, UInt64),
    tokens   AggregateFunction(uniq, FixedString(32))
)
ENGINE = {{engine "AggregatingMergeTree" "uses_minutely" ""}}
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, leak, service, country)
{{ttl "aggregates" "minute"}};

{{distributed "uses_minutely" "cityHash64(service)"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{local "uses_minutely_mv"}}{{on_cluster}}
TO {{local "uses_minutely"}} AS
SELECT
    toStartOfMinute(event_time) AS minute,
    leak, service, country,
    uniqState(row_id)           AS uses,
    uniqState(fingerprint)      AS tokens
FROM {{local "token_events"}}
GROUP BY minute, leak, service, country;
