-- 0004: one-time codes: encrypted TOTP secrets, code challenges for destructive actions, wrong-code log.
CREATE TABLE mfa_secrets (
    customer_id    INTEGER PRIMARY KEY REFERENCES customers(id),
    secret         TEXT,              -- Fernet-encrypted with HANDOFF_SECRET_KEY; NULL until enrolled
    pending_secret TEXT,              -- a new setup waiting for its first code (encrypted)
    last_step      INTEGER NOT NULL DEFAULT 0,  -- the newest accepted 30 s step: older and equal are refused
    enrolled_at    REAL,
    locked_at      REAL,
    updated_at     REAL NOT NULL
);

CREATE TABLE mfa_challenges (
    id              INTEGER PRIMARY KEY,
    customer_id     INTEGER NOT NULL REFERENCES customers(id),
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    action_name     TEXT NOT NULL,
    action_params   TEXT NOT NULL,
    details         TEXT NOT NULL,
    tool_use_id     TEXT,
    status          TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'passed', 'cancelled', 'failed', 'expired')),
    wrong           INTEGER NOT NULL DEFAULT 0,
    expires_at      REAL NOT NULL,
    decided_at      REAL,
    result          TEXT,
    created_at      REAL NOT NULL
);
CREATE INDEX mfa_challenges_pending ON mfa_challenges(customer_id, id) WHERE status = 'pending';
CREATE INDEX mfa_challenges_expiry ON mfa_challenges(expires_at) WHERE status = 'pending';

CREATE TABLE mfa_failures (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    at          REAL NOT NULL
);
CREATE INDEX mfa_failures_recent ON mfa_failures(customer_id, at);
