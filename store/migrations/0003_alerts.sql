-- alerts: the alert contract (DESIGN.md), evidence kept as its JSON array.
-- One row per (id, version): a re-raise with grown evidence (update_count + 1)
-- or a status change (open -> closed) is a new row with a larger version;
-- alerts_latest folds them to the newest row per id.
CREATE TABLE IF NOT EXISTS {{local "alerts"}}{{on_cluster}}
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
ENGINE = {{engine "ReplacingMergeTree" "alerts" "version"}}
PARTITION BY toYYYYMM(event_time)
ORDER BY (id)
{{ttl "alerts" "event_time"}};

{{distributed "alerts" "cityHash64(id)"}};

CREATE VIEW IF NOT EXISTS {{table "alerts_latest"}}{{on_cluster}} AS
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
FROM {{table "alerts"}}
GROUP BY id;
