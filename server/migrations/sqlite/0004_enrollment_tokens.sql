-- Per-device enrollment tokens (decision D30): issued by the operator API, shown once,
-- kept only as a SHA-256 hash of the secret; single use (the first registration that
-- presents one sets used_at and used_by), revocable, optionally expiring.
CREATE TABLE enrollment_tokens (
    token_id     TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL,
    label        TEXT,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    used_at      BIGINT,
    used_by      TEXT
);
