-- Back office: operator API keys (hashed) and customs declarations.

-- An operator key is shown once, at creation; only a SHA-256 hash of its secret is kept.
CREATE TABLE operator_keys (
    key_id        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    scope         TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);

-- Customs declarations (AMS customs/declare), one row per declarationRequestId.
CREATE TABLE declarations (
    declaration_request_id  TEXT PRIMARY KEY,
    payment_id              TEXT NOT NULL REFERENCES payments (payment_id),
    sub_order_id            TEXT,
    customs_code            TEXT NOT NULL,
    merchant_customs_code   TEXT NOT NULL,
    merchant_customs_name   TEXT NOT NULL,
    currency                TEXT NOT NULL,
    amount                  BIGINT NOT NULL,
    status                  TEXT NOT NULL,
    result_code             TEXT,
    result_desc             TEXT,
    customs_payment_id      TEXT,
    customs_order_id        TEXT,
    identity_check_result   TEXT,
    clearing_channel        TEXT,
    operator                TEXT NOT NULL,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX declarations_payment ON declarations (payment_id);
CREATE INDEX payments_created ON payments (created_at);
