-- bootstrap
CREATE DATABASE IF NOT EXISTS tokenwatch;

CREATE TABLE IF NOT EXISTS tokenwatch.schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY version;

-- 0001_token_events
CREATE TABLE IF NOT EXISTS tokenwatch.token_events
(
    row_id             UInt64,
    fingerprint        FixedString(32),
    event_time         DateTime64(3, 'UTC'),
    leak               UInt8,
    kind               LowCardinality(String),
    rule               LowCardinality(String),
    redacted           String,
    ip                 IPv6,
    ip_label           LowCardinality(String),
    asn                UInt32,
    as_org             LowCardinality(String),
    country            LowCardinality(String),
    continent          LowCardinality(String),
    city               LowCardinality(String),
    lat                Float64,
    lon                Float64,
    has_location       UInt8,
    accuracy_radius    UInt16,
    user_agent         String,
    user               String,
    method             LowCardinality(String),
    path               String,
    status             UInt16,
    service            LowCardinality(String),
    host               LowCardinality(String),
    scheme             LowCardinality(String),
    param              LowCardinality(String),
    dpop_proof         UInt8,
    headers_logged     UInt8,
    alg                LowCardinality(String),
    issuer             LowCardinality(String),
    subject            String,
    client_id          LowCardinality(String),
    jti                String,
    aud                Array(LowCardinality(String)),
    scope              Array(LowCardinality(String)),
    exp                DateTime('UTC'),
    iat                DateTime('UTC'),
    lifetime           Int64,
    expired            UInt8,
    sender_constrained UInt8,
    source             LowCardinality(String),
    partition          Int32,
    offset             Int64,
    inserted_at        DateTime('UTC') DEFAULT now(),
    INDEX idx_jti jti TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_time event_time TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (fingerprint, row_id)
TTL toDateTime(event_time) + INTERVAL 90 DAY;

-- 0002_findings
CREATE TABLE IF NOT EXISTS tokenwatch.findings
(
    row_id          UInt64,
    fingerprint     FixedString(32),
    event_time      DateTime64(3, 'UTC'),
    kind            LowCardinality(String),
    rule            LowCardinality(String),
    redacted        String,
    service         LowCardinality(String),
    host            LowCardinality(String),
    scheme          LowCardinality(String),
    param           LowCardinality(String),
    alg             LowCardinality(String),
    kid             String,
    typ             LowCardinality(String),
    iss             LowCardinality(String),
    sub             String,
    aud             Array(LowCardinality(String)),
    exp             DateTime('UTC'),
    iat             DateTime('UTC'),
    jti             String,
    client_id       LowCardinality(String),
    scope           Array(LowCardinality(String)),
    expired         UInt8,
    alg_none        UInt8,
    lifetime        Int64,
    source          LowCardinality(String),
    partition       Int32,
    offset          Int64,
    inserted_at     DateTime('UTC') DEFAULT now(),
    INDEX idx_fp fingerprint TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (service, row_id)
TTL toDateTime(event_time) + INTERVAL 365 DAY;

-- 0003_alerts
CREATE TABLE IF NOT EXISTS tokenwatch.alerts
(
    id              String,
    version         UInt64,
    type            LowCardinality(String),
    severity        LowCardinality(String),
    status          LowCardinality(String),
    fingerprint     String,
    kind            LowCardinality(String),
    redacted        String,
    jti             String,
    issuer          LowCardinality(String),
    subject         String,
    client_id       LowCardinality(String),
    service         LowCardinality(String),
    event_time      DateTime64(3, 'UTC'),
    detected_at     DateTime64(3, 'UTC'),
    summary         String,
    evidence        String,
    evidence_count  UInt16,
    update_count    UInt32,
    inserted_at     DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(event_time)
ORDER BY (id)
TTL toDateTime(event_time) + INTERVAL 730 DAY;

CREATE VIEW IF NOT EXISTS tokenwatch.alerts_latest AS
SELECT
    id,
    max(version)                    AS latest_version,
    argMax(type, version)           AS type,
    argMax(severity, version)       AS severity,
    argMax(status, version)         AS status,
    argMax(fingerprint, version)    AS fingerprint,
    argMax(kind, version)           AS kind,
    argMax(redacted, version)       AS redacted,
    argMax(jti, version)            AS jti,
    argMax(issuer, version)         AS issuer,
    argMax(subject, version)        AS subject,
    argMax(client_id, version)      AS client_id,
    argMax(service, version)        AS service,
    min(event_time)                 AS event_time,
    min(detected_at)                AS detected_at,
    argMax(summary, version)        AS summary,
    argMax(evidence, version)       AS evidence,
    argMax(evidence_count, version) AS evidence_count,
    max(update_count)               AS update_count
FROM tokenwatch.alerts
GROUP BY id;

-- 0004_revocations
CREATE TABLE IF NOT EXISTS tokenwatch.revocations
(
    row_id          UInt64,
    fingerprint     String,
    jti             String,
    issuer          LowCardinality(String),
    revoked_at      DateTime64(3, 'UTC'),
    reason          String,
    source          LowCardinality(String),
    partition       Int32,
    offset          Int64,
    inserted_at     DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(revoked_at)
ORDER BY (fingerprint, jti, row_id)
TTL toDateTime(revoked_at) + INTERVAL 730 DAY;

-- 0005_deliveries
CREATE TABLE IF NOT EXISTS tokenwatch.deliveries
(
    alert_id        String,
    sink            LowCardinality(String),
    sink_kind       LowCardinality(String),
    attempt         UInt16,
    status_code     UInt16,
    outcome         LowCardinality(String),
    error           String,
    time            DateTime64(3, 'UTC'),
    duration_ms     UInt32,
    inserted_at     DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (alert_id, sink, attempt)
TTL toDateTime(time) + INTERVAL 90 DAY;

-- 0006_aggregates
CREATE TABLE IF NOT EXISTS tokenwatch.leaks_hourly
(
    hour     DateTime('UTC'),
    service  LowCardinality(String),
    source   LowCardinality(String),
    rule     LowCardinality(String),
    kind     LowCardinality(String),
    leaks    AggregateFunction(uniq, UInt64),
    tokens   AggregateFunction(uniq, FixedString(32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, service, source, rule, kind)
TTL toDateTime(hour) + INTERVAL 730 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS tokenwatch.leaks_hourly_mv
TO tokenwatch.leaks_hourly AS
SELECT
    toStartOfHour(event_time) AS hour,
    service, source, rule, kind,
    uniqState(row_id)         AS leaks,
    uniqState(fingerprint)    AS tokens
FROM tokenwatch.findings
GROUP BY hour, service, source, rule, kind;

CREATE TABLE IF NOT EXISTS tokenwatch.alerts_minutely
(
    minute   DateTime('UTC'),
    type     LowCardinality(String),
    severity LowCardinality(String),
    alerts   AggregateFunction(uniq, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, type, severity)
TTL toDateTime(minute) + INTERVAL 730 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS tokenwatch.alerts_minutely_mv
TO tokenwatch.alerts_minutely AS
SELECT
    toStartOfMinute(event_time) AS minute,
    type, severity,
    uniqState(id)               AS alerts
FROM tokenwatch.alerts
GROUP BY minute, type, severity;

CREATE TABLE IF NOT EXISTS tokenwatch.uses_minutely
(
    minute   DateTime('UTC'),
    leak     UInt8,
    service  LowCardinality(String),
    country  LowCardinality(String),
    uses     AggregateFunction(uniq, UInt64),
    tokens   AggregateFunction(uniq, FixedString(32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, leak, service, country)
TTL toDateTime(minute) + INTERVAL 730 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS tokenwatch.uses_minutely_mv
TO tokenwatch.uses_minutely AS
SELECT
    toStartOfMinute(event_time) AS minute,
    leak, service, country,
    uniqState(row_id)           AS uses,
    uniqState(fingerprint)      AS tokens
FROM tokenwatch.token_events
GROUP BY minute, leak, service, country;

-- retention
ALTER TABLE tokenwatch.token_events MODIFY TTL toDateTime(event_time) + INTERVAL 90 DAY;
ALTER TABLE tokenwatch.findings MODIFY TTL toDateTime(event_time) + INTERVAL 365 DAY;
ALTER TABLE tokenwatch.alerts MODIFY TTL toDateTime(event_time) + INTERVAL 730 DAY;
ALTER TABLE tokenwatch.revocations MODIFY TTL toDateTime(revoked_at) + INTERVAL 730 DAY;
ALTER TABLE tokenwatch.deliveries MODIFY TTL toDateTime(time) + INTERVAL 90 DAY;
ALTER TABLE tokenwatch.leaks_hourly MODIFY TTL toDateTime(hour) + INTERVAL 730 DAY;
ALTER TABLE tokenwatch.alerts_minutely MODIFY TTL toDateTime(minute) + INTERVAL 730 DAY;
ALTER TABLE tokenwatch.uses_minutely MODIFY TTL toDateTime(minute) + INTERVAL 730 DAY;
