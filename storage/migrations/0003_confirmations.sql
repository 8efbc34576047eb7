-- 0003: customer confirmations of preference/transactional actions, and buttons on owed DMs.
-- status: pending -> confirmed | cancelled | expired (one conditional update decides it).
CREATE TABLE confirmations (
    id              INTEGER PRIMARY KEY,
    customer_id     INTEGER NOT NULL REFERENCES customers(id),
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    action_name     TEXT NOT NULL,
    action_params   TEXT NOT NULL,
    strategy        TEXT NOT NULL,
    risk_level      TEXT NOT NULL,
    rules           TEXT NOT NULL,
    details         TEXT NOT NULL,
    tool_use_id     TEXT,
    status          TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'confirmed', 'cancelled', 'expired')),
    asked_times     INTEGER NOT NULL DEFAULT 1,
    expires_at      REAL NOT NULL,
    decided_at      REAL,
    decided_via     TEXT,
    result          TEXT,
    created_at      REAL NOT NULL
);
CREATE INDEX confirmations_pending ON confirmations(customer_id, id) WHERE status = 'pending';
CREATE INDEX confirmations_expiry ON confirmations(expires_at) WHERE status = 'pending';

-- A DM can carry buttons: {"kind": "confirm", "id": N, "style": "preference"|"transactional"}.
ALTER TABLE outbox ADD COLUMN buttons TEXT;
