-- findings: leak findings, one row per credential found in an application log
-- (a TokenUse with Leak set), with the non-secret JWT claims for triage.
-- Sorted by service for the app-teams dashboard; the sorting key ends with
-- the deterministic row_id (not the event time: see token_events).
CREATE TABLE IF NOT EXISTS {{local "findings"}}{{on_cluster}}
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
ENGINE = {{engine "ReplacingMergeTree" "findings" ""}}
PARTITION BY toYYYYMM(event_time)
ORDER BY (service, row_id)
{{ttl "findings" "event_time"}};

{{distributed "findings" "cityHash64(service)"}};
