-- 0031: push, not only poll: an agent ticket's notify_url, and the webhook outbox (one row per settled outcome, retried until delivered).
ALTER TABLE tickets ADD COLUMN notify_url TEXT;
CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    outcome TEXT NOT NULL,
    agent TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    delivered_at REAL,
    failed_at REAL,
    last_error TEXT,
    UNIQUE (ticket_id, outcome)
);
CREATE INDEX webhook_outbox_waiting ON webhook_outbox(ticket_id) WHERE delivered_at IS NULL AND failed_at IS NULL;
