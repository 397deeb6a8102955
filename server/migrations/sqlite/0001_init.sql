-- scanbind-server schema, SQLite dialect. Times are Unix milliseconds (BIGINT).
-- Money is BIGINT minor units. No token is ever stored in the clear.

CREATE TABLE devices (
    device_id      TEXT PRIMARY KEY,
    public_key     TEXT NOT NULL,
    name           TEXT NOT NULL,
    model          TEXT NOT NULL,
    registered_at  BIGINT NOT NULL
);

-- Replay protection: a (device, nonce) pair is accepted once within the window.
CREATE TABLE seen_nonces (
    device_id   TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);

CREATE TABLE bindings (
    binding_id               TEXT PRIMARY KEY,
    device_id                TEXT NOT NULL REFERENCES devices (device_id),
    wallet                   TEXT NOT NULL,
    auth_state               TEXT NOT NULL UNIQUE,
    status                   TEXT NOT NULL,
    match_code               TEXT NOT NULL,
    code_value               TEXT NOT NULL,
    expires_at               BIGINT NOT NULL,
    user_login_id            TEXT,
    token_fingerprint        TEXT UNIQUE,
    access_token_expires_at  TEXT,
    refresh_token_expires_at TEXT,
    sealed_pending           TEXT,
    reason                   TEXT,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);
CREATE INDEX bindings_pending ON bindings (status, expires_at);

CREATE TABLE payments (
    payment_id          TEXT PRIMARY KEY,
    payment_request_id  TEXT NOT NULL UNIQUE,
    device_id           TEXT NOT NULL REFERENCES devices (device_id),
    app_id              TEXT NOT NULL,
    app_order_id        TEXT NOT NULL,
    product             TEXT NOT NULL,
    binding_id          TEXT REFERENCES bindings (binding_id),
    wallet              TEXT NOT NULL,
    code_value          TEXT,
    currency            TEXT NOT NULL,
    amount              BIGINT NOT NULL,
    description         TEXT NOT NULL,
    status              TEXT NOT NULL,
    stage               TEXT NOT NULL,
    result_code         TEXT,
    result_message      TEXT,
    ams_payment_id      TEXT,
    refunded            BIGINT NOT NULL DEFAULT 0,
    receipt             TEXT,
    expires_at          BIGINT NOT NULL,
    next_action_at      BIGINT NOT NULL,
    attempts            BIGINT NOT NULL DEFAULT 0,
    lease_owner         TEXT,
    lease_until         BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (device_id, app_id, app_order_id)
);
CREATE INDEX payments_due ON payments (status, next_action_at);

CREATE TABLE refunds (
    refund_request_id  TEXT PRIMARY KEY,
    payment_id         TEXT NOT NULL REFERENCES payments (payment_id),
    refund_id          TEXT NOT NULL,
    currency           TEXT NOT NULL,
    amount             BIGINT NOT NULL,
    reason             TEXT,
    status             TEXT NOT NULL,
    result_code        TEXT,
    ams_refund_id      TEXT,
    receipt            TEXT,
    next_action_at     BIGINT NOT NULL,
    attempts           BIGINT NOT NULL DEFAULT 0,
    lease_owner        TEXT,
    lease_until        BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (payment_id, refund_id)
);
CREATE INDEX refunds_due ON refunds (status, next_action_at);

-- Every step of every payment and refund, for audit and reconciliation.
CREATE TABLE steps (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id   TEXT NOT NULL,
    step         TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX steps_subject ON steps (subject_id, id);

-- Notification de-duplication.
CREATE TABLE notifications (
    kind         TEXT NOT NULL,
    dedup_key    TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, dedup_key)
);

-- Device event log (the SSE stream replays from here).
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX events_device ON events (device_id, seq);
