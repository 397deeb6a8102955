-- Combined checkouts: one checkout pays several sellers, one payments row per part
-- (product 'checkout_part'), all committed before any AMS call.

CREATE TABLE checkouts (
    checkout_id     TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL REFERENCES devices (device_id),
    app_id          TEXT NOT NULL,
    app_order_id    TEXT NOT NULL,
    binding_id      TEXT NOT NULL REFERENCES bindings (binding_id),
    currency        TEXT NOT NULL,
    total           BIGINT NOT NULL,
    all_or_nothing  BIGINT NOT NULL,
    -- SHA-256 over the request's binding, currency, mode and parts (idempotency check).
    fingerprint     TEXT NOT NULL,
    -- 'paying', 'reversing' (all-or-nothing: undoing paid parts), or final:
    -- 'succeeded', 'partially_succeeded', 'failed'.
    status          TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    next_action_at  BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (device_id, app_id, app_order_id)
);
CREATE INDEX checkouts_due ON checkouts (status, next_action_at);

CREATE TABLE checkout_parts (
    checkout_id  TEXT NOT NULL REFERENCES checkouts (checkout_id),
    idx          BIGINT NOT NULL,
    payment_id   TEXT NOT NULL UNIQUE REFERENCES payments (payment_id),
    seller_id    TEXT NOT NULL,
    seller_name  TEXT NOT NULL,
    seller_mcc   TEXT NOT NULL,
    -- How an all-or-nothing reversal undid the part: NULL, 'cancel' or 'refund'.
    reversal     TEXT,
    reversed     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (checkout_id, idx)
);
