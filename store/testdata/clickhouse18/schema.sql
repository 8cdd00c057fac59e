-- The tokenwatch tables for Debian's clickhouse-server 18.16, which the
-- writer's integration tests run against (no current server is packaged
-- here; chDB runs the real migrations). Same table and column names as
-- store/migrations, with the types 18.16 has: DateTime for DateTime64,
-- String for IPv6 and LowCardinality(String), no TTL, no skip indexes.
-- The writer inserts the same Go column slices into either schema.
CREATE DATABASE IF NOT EXISTS {{db}};
CREATE TABLE IF NOT EXISTS {{db}}.token_events
(
    row_id UInt64, fingerprint FixedString(32), event_time DateTime, leak UInt8,
    kind String, rule String, redacted String, ip String, ip_label String,
    asn UInt32, as_org String, country String, continent String, city String,
    lat Float64, lon Float64, has_location UInt8, accuracy_radius UInt16,
    user_agent String, user String, method String, path String, status UInt16,
    service String, host String, scheme String, param String,
    dpop_proof UInt8, headers_logged UInt8, alg String, issuer String, subject String,
    client_id String, jti String, aud Array(String), scope Array(String),
    exp DateTime, iat DateTime, lifetime Int64, expired UInt8, sender_constrained UInt8,
    source String, partition Int32, offset Int64,
    inserted_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (fingerprint, row_id);
CREATE TABLE IF NOT EXISTS {{db}}.findings
(
    row_id UInt64, fingerprint FixedString(32), event_time DateTime,
    kind String, rule String, redacted String, service String, host String,
    scheme String, param String, alg String, kid String, typ String, iss String, sub String,
    aud Array(String), exp DateTime, iat DateTime, jti String, client_id String,
    scope Array(String), expired UInt8, alg_none UInt8, lifetime Int64,
    source String, partition Int32, offset Int64,
    inserted_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (service, row_id);
CREATE TABLE IF NOT EXISTS {{db}}.alerts
(
    id String, version UInt64, type String, severity String, status String,
    fingerprint String, kind String, redacted String, jti String, issuer String,
    subject String, client_id String, service String,
    event_time DateTime, detected_at DateTime, summary String, evidence String,
    evidence_count UInt16, update_count UInt32,
    inserted_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(event_time)
ORDER BY (id);
CREATE TABLE IF NOT EXISTS {{db}}.revocations
(
    row_id UInt64, fingerprint String, jti String, issuer String, revoked_at DateTime,
    reason String, source String, partition Int32, offset Int64,
    inserted_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(revoked_at)
ORDER BY (fingerprint, jti, row_id);
CREATE TABLE IF NOT EXISTS {{db}}.deliveries
(
    alert_id String, sink String, sink_kind String, attempt UInt16, status_code UInt16,
    outcome String, error String, time DateTime, duration_ms UInt32,
    inserted_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (alert_id, sink, attempt);
