-- token_events: one row per token use (auth logs) or leak sighting (app logs).
-- Sorted by fingerprint for the token-investigation dashboard; partitioned by
-- day so time-range panels prune whole days. row_id is deterministic (computed
-- in Go from the record's origin and the finding's index), so a replayed batch
-- writes the same sorting key and ReplacingMergeTree folds the copies; queries
-- that must not double count use FINAL or uniq(row_id). event_time is not in
-- the sorting key: a record without its own timestamp gets the ingest time,
-- which differs when it is replayed.
CREATE TABLE IF NOT EXISTS {{local "token_events"}}{{on_cluster}}
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
ENGINE = {{engine "ReplacingMergeTree" "token_events" ""}}
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (fingerprint, row_id)
{{ttl "token_events" "event_time"}};

{{distributed "token_events" "cityHash64(fingerprint)"}};
