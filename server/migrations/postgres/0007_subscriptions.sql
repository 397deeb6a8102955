-- Issue 27: subscriptions. The server charges each period itself with a grant of the
-- binding's tokens (AEAD-sealed under a key derived from the sealing key, bound to the
-- binding, the app and the subscription; never a clear token), deleted when the
-- subscription stops renewing. Each charge is an ordinary `payments` row (product
-- 'agreement') linked by `subscription_charges`.

CREATE TABLE subscriptions (
    subscription_id      TEXT PRIMARY KEY,
    device_id            TEXT NOT NULL REFERENCES devices (device_id),
    app_id               TEXT NOT NULL,
    app_subscription_id  TEXT NOT NULL,
    binding_id           TEXT NOT NULL REFERENCES bindings (binding_id),
    wallet               TEXT NOT NULL,
    plan                 TEXT NOT NULL,
    currency             TEXT NOT NULL,
    amount               BIGINT NOT NULL,
    period               TEXT NOT NULL,
    trial                TEXT,
    intro_amount         BIGINT,
    intro_periods        BIGINT NOT NULL DEFAULT 0,
    -- SHA-256 over the terms (idempotency check).
    fingerprint          TEXT NOT NULL,
    -- 'pending', 'trial', 'active', 'grace', 'cancelled', or final 'expired'.
    status               TEXT NOT NULL,
    -- Start of period 0 (subscribe time, or the trial's end), Unix ms (billing clock).
    anchor               BIGINT NOT NULL,
    -- End of what is paid for (or of the trial); NULL before the first charge.
    period_end           BIGINT,
    periods_paid         BIGINT NOT NULL DEFAULT 0,
    -- The period charged next, its failed attempts so far, and when (NULL: never).
    charge_index         BIGINT NOT NULL DEFAULT 0,
    failures             BIGINT NOT NULL DEFAULT 0,
    next_charge_at       BIGINT,
    -- The charge in flight (a pending payment), if any.
    pending_payment_id   TEXT,
    -- The sealed grant (`sbg1.`); NULL once revoked.
    token_grant          TEXT,
    reason               TEXT,
    receipt              TEXT,
    -- Optimistic concurrency: every change is `UPDATE ... WHERE version = <read>`.
    version              BIGINT NOT NULL DEFAULT 0,
    lease_owner          TEXT,
    lease_until          BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (device_id, app_id, app_subscription_id)
);
CREATE INDEX subscriptions_due ON subscriptions (status, next_charge_at);
CREATE INDEX subscriptions_binding ON subscriptions (binding_id);

CREATE TABLE subscription_charges (
    payment_id       TEXT PRIMARY KEY REFERENCES payments (payment_id),
    subscription_id  TEXT NOT NULL REFERENCES subscriptions (subscription_id),
    period_index     BIGINT NOT NULL,
    attempt          BIGINT NOT NULL,
    UNIQUE (subscription_id, period_index, attempt)
);
