-- deliveries: one row per delivery attempt of an alert to a sink (webhook,
-- RFC 7009 revocation, SSF push). A retried attempt number is a new row; the
-- same (alert, sink, attempt) written twice folds to one.
CREATE TABLE IF NOT EXISTS {{local "deliveries"}}{{on_cluster}}
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
ENGINE = {{engine "ReplacingMergeTree" "deliveries" ""}}
PARTITION BY toYYYYMM(time)
ORDER BY (alert_id, sink, attempt)
{{ttl "deliveries" "time"}};

{{distributed "deliveries" "cityHash64(alert_id)"}};
