-- bootstrap
CREATE DATABASE IF NOT EXISTS tokenwatch ON CLUSTER tw_cluster;

CREATE TABLE IF NOT EXISTS tokenwatch.schema_migrations_local ON CLUSTER tw_cluster
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tokenwatch/schema_migrations_local', '{replica}')
ORDER BY version;

-- 0001_token_events
CREATE TABLE IF NOT EXISTS tokenwatch.token_events_local ON CLUSTER tw_cluster
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tokenwatch/token_events_local', '{replica}')
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (fingerprint, row_id)
TTL toDateTime(event_time) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS tokenwatch.token_events ON CLUSTER tw_cluster AS tokenwatch.token_events_local ENGINE = Distributed(tw_cluster, tokenwatch, token_events_local, cityHash64(fingerprint));

-- 0002_findings
CREATE TABLE IF NOT EXISTS tokenwatch.findings_local ON CLUSTER tw_cluster
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tokenwatch/findings_local', '{replica}')
PARTITION BY toYYYYMM(event_time)
ORDER BY (service, row_id)
TTL toDateTime(event_time) + INTERVAL 365 DAY;

CREATE TABLE IF NOT EXISTS tokenwatch.findings ON CLUSTER tw_cluster AS tokenwatch.findings_local ENGINE = Distributed(tw_cluster, tokenwatch, findings_local, cityHash64(service));

-- 0003_alerts
CREATE TABLE IF NOT EXISTS tokenwatch.alerts_local ON CLUSTER tw_cluster
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tokenwatch/alerts_local', '{replica}', version)
PARTITION BY toYYYYMM(event_time)
ORDER BY (id)
TTL toDateTime(event_time) + INTERVAL 730 DAY;

CREATE TABLE IF NOT EXISTS tokenwatch.alerts ON CLUSTER tw_cluster AS tokenwatch.alerts_local ENGINE = Distributed(tw_cluster, tokenwatch, alerts_local, cityHash64(id));

CREATE VIEW IF NOT EXISTS tokenwatch.alerts_latest ON CLUSTER tw_cluster AS
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
CREATE TABLE IF NOT EXISTS tokenwatch.revocations_local ON CLUSTER tw_cluster
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tokenwatch/revocations_local', '{replica}')
PARTITION BY toYYYYMM(revoked_at)
ORDER BY (fingerprint, jti, row_id)
TTL toDateTime(revoked_at) + INTERVAL 730 DAY;

CREATE TABLE IF NOT EXISTS tokenwatch.revocations ON CLUSTER tw_cluster AS tokenwatch.revocations_local ENGINE = Distributed(tw_cluster, tokenwatch, revocations_local, cityHash64(fingerprint, jti));

-- 0005_deliveries
CREATE TABLE IF NOT EXISTS tokenwatch.deliveries_local ON CLUSTER tw_cluster
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tokenwatch/deliveries_local', '{replica}')
PARTITION BY toYYYYMM(time)
ORDER BY (alert_id, sink, attempt)
TTL toDateTime(time) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS tokenwatch.deliveries ON CLUSTER tw_cluster AS tokenwatch.deliveries_local ENGINE = Distributed(tw_cluster, tokenwatch, deliveries_local, cityHash64(alert_id));

-- 0006_aggregates
CREATE TABLE IF NOT EXISTS tokenwatch.leaks_hourly_local ON CLUSTER tw_cluster
(
    hour     DateTime('UTC'),
    service  LowCardinality(String),
    source   LowCardinality(String),
    rule     LowCardinality(String),
    kind     LowCardinality(String),
    leaks    AggregateFunction(uniq, UInt64),
    tokens   AggregateFunction(uniq, FixedString(32))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/tokenwatch/leaks_hourly_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, service, source, rule, kind)
TTL toDateTime(hour) + INTERVAL 730 DAY;

CREATE TABLE IF NOT EXISTS tokenwatch.leaks_hourly ON CLUSTER tw_cluster AS tokenwatch.leaks_hourly_local ENGINE = Distributed(tw_cluster, tokenwatch, leaks_hourly_local, cityHash64(service));

CREATE MATERIALIZED VIEW IF NOT EXISTS tokenwatch.leaks_hourly_mv_local ON CLUSTER tw_cluster
TO tokenwatch.leaks_hourly_local AS
SELECT
    toStartOfHour(event_time) AS hour,
    service, source, rule, kind,
    uniqState(row_id)         AS leaks,
    uniqState(fingerprint)    AS tokens
FROM tokenwatch.findings_local
GROUP BY hour, service, source, rule, kind;

CREATE TABLE IF NOT EXISTS tokenwatch.alerts_minutely_local ON CLUSTER tw_cluster
(
    minute   DateTime('UTC'),
    type     LowCardinality(String),
    severity LowCardinality(String),
    alerts   AggregateFunction(uniq, String)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/tokenwatch/alerts_minutely_local', '{replica}')
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, type, severity)
TTL toDateTime(minute) + INTERVAL 730 DAY;

CREATE TABLE IF NOT EXISTS tokenwatch.alerts_minutely ON CLUSTER tw_cluster AS tokenwatch.alerts_minutely_local ENGINE = Distributed(tw_cluster, tokenwatch, alerts_minutely_local, cityHash64(type));

CREATE MATERIALIZED VIEW IF NOT EXISTS tokenwatch.alerts_minutely_mv_local ON CLUSTER tw_cluster
TO tokenwatch.alerts_minutely_local AS
SELECT
    toStartOfMinute(event_time) AS minute,
    type, severity,
    uniqState(id)               AS alerts
FROM tokenwatch.alerts_local
GROUP BY minute, type, severity;

CREATE TABLE IF NOT EXISTS tokenwatch.uses_minutely_local ON CLUSTER tw_cluster
(
    minute   DateTime('UTC'),
    leak     UInt8,
    service  LowCardinality(String),
    country  LowCardinality(String),
    uses     AggregateFunction(uniq, UInt64),
    tokens   AggregateFunction(uniq, FixedString(32))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/tokenwatch/uses_minutely_local', '{replica}')
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, leak, service, country)
TTL toDateTime(minute) + INTERVAL 730 DAY;

CREATE TABLE IF NOT EXISTS tokenwatch.uses_minutely ON CLUSTER tw_cluster AS tokenwatch.uses_minutely_local ENGINE = Distributed(tw_cluster, tokenwatch, uses_minutely_local, cityHash64(service));

CREATE MATERIALIZED VIEW IF NOT EXISTS tokenwatch.uses_minutely_mv_local ON CLUSTER tw_cluster
TO tokenwatch.uses_minutely_local AS
SELECT
    toStartOfMinute(event_time) AS minute,
    leak, service, country,
    uniqState(row_id)           AS uses,
    uniqState(fingerprint)      AS tokens
FROM tokenwatch.token_events_local
GROUP BY minute, leak, service, country;

-- retention
ALTER TABLE tokenwatch.token_events_local ON CLUSTER tw_cluster MODIFY TTL toDateTime(event_time) + INTERVAL 90 DAY;
ALTER TABLE tokenwatch.findings_local ON CLUSTER tw_cluster MODIFY TTL toDateTime(event_time) + INTERVAL 365 DAY;
ALTER TABLE tokenwatch.alerts_local ON CLUSTER tw_cluster MODIFY TTL toDateTime(event_time) + INTERVAL 730 DAY;
ALTER TABLE tokenwatch.revocations_local ON CLUSTER tw_cluster MODIFY TTL toDateTime(revoked_at) + INTERVAL 730 DAY;
ALTER TABLE tokenwatch.deliveries_local ON CLUSTER tw_cluster MODIFY TTL toDateTime(time) + INTERVAL 90 DAY;
ALTER TABLE tokenwatch.leaks_hourly_local ON CLUSTER tw_cluster MODIFY TTL toDateTime(hour) + INTERVAL 730 DAY;
ALTER TABLE tokenwatch.alerts_minutely_local ON CLUSTER tw_cluster MODIFY TTL toDateTime(minute) + INTERVAL 730 DAY;
ALTER TABLE tokenwatch.uses_minutely_local ON CLUSTER tw_cluster MODIFY TTL toDateTime(minute) + INTERVAL 730 DAY;
