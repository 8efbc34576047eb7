-- 0005: ticket deadlines live in the database (the scheduler only fires them): a reminder to the
-- operators at half the answer timeout, then the customer is told no one has answered yet.
ALTER TABLE tickets ADD COLUMN reminder_due_at REAL;
ALTER TABLE tickets ADD COLUMN timeout_due_at REAL;
ALTER TABLE tickets ADD COLUMN reminded_at REAL;
ALTER TABLE tickets ADD COLUMN timed_out_at REAL;
CREATE INDEX tickets_reminder_due ON tickets(reminder_due_at) WHERE reminded_at IS NULL;
CREATE INDEX tickets_timeout_due ON tickets(timeout_due_at) WHERE timed_out_at IS NULL;
CREATE INDEX conversations_open ON conversations(last_activity_at) WHERE ended_at IS NULL;
CREATE INDEX conversations_started ON conversations(started_at);

-- A reminder pings the operator role: a new desk_outbox op, 'ping' (a CHECK can't be altered in place).
CREATE TABLE desk_outbox_v2 (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER NOT NULL REFERENCES tickets(id),
    op              TEXT NOT NULL CHECK (op IN ('open', 'post', 'ping', 'refresh', 'archive')),
    content         TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT,
    created_at      REAL NOT NULL
);
INSERT INTO desk_outbox_v2 SELECT * FROM desk_outbox;
DROP TABLE desk_outbox;
ALTER TABLE desk_outbox_v2 RENAME TO desk_outbox;
CREATE INDEX desk_outbox_pending ON desk_outbox(ticket_id, id) WHERE status = 'pending';
