-- revocations: revocation events seen on the revocation topic or file, by
-- fingerprint and/or jti (with issuer when known).
CREATE TABLE IF NOT EXISTS {{local "revocations"}}{{on_cluster}}
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
ENGINE = {{engine "ReplacingMergeTree" "revocations" ""}}
PARTITION BY toYYYYMM(revoked_at)
ORDER BY (fingerprint, jti, row_id)
{{ttl "revocations" "revoked_at"}};

{{distributed "revocations" "cityHash64(fingerprint, jti)"}};
