-- 0009: tickets without CHECK constraints on kind, priority and status (storage/records.py validates
-- them), so a new ticket kind is a line of code, not a table rebuild. This is that rebuild, once.
-- Runs with foreign keys off (Database.migrate); rows, ids and indexes are kept as they were.
CREATE TABLE tickets_new (
    id               INTEGER PRIMARY KEY,
    customer_id      INTEGER NOT NULL REFERENCES customers(id),
    conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
    kind             TEXT NOT NULL,
    source           TEXT NOT NULL,
    priority         TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'open',
    question         TEXT NOT NULL,
    reason           TEXT NOT NULL DEFAULT '',
    action_name      TEXT,
    action_params    TEXT,
    tool_use_id      TEXT,
    claimed_by       INTEGER,
    claimed_by_name  TEXT,
    takeover_by      INTEGER,
    takeover_by_name TEXT,
    decided_by       INTEGER,
    decided_by_name  TEXT,
    decided_at       REAL,
    decision_note    TEXT,
    executed_at      REAL,
    result           TEXT,
    dm_closed_at     REAL,
    staff_message_id INTEGER,
    thread_id        INTEGER UNIQUE,
    created_at       REAL NOT NULL,
    first_response_at REAL,
    closed_at        REAL,
    close_reason     TEXT,
    reminder_due_at  REAL,
    timeout_due_at   REAL,
    reminded_at      REAL,
    timed_out_at     REAL
);
INSERT INTO tickets_new (id, customer_id, conversation_id, kind, source, priority, status, question, reason,
    action_name, action_params, tool_use_id, claimed_by, claimed_by_name, takeover_by, takeover_by_name, decided_by,
    decided_by_name, decided_at, decision_note, executed_at, result, dm_closed_at, staff_message_id, thread_id,
    created_at, first_response_at, closed_at, close_reason, reminder_due_at, timeout_due_at, reminded_at, timed_out_at)
SELECT id, customer_id, conversation_id, kind, source, priority, status, question, reason,
    action_name, action_params, tool_use_id, claimed_by, claimed_by_name, takeover_by, takeover_by_name, decided_by,
    decided_by_name, decided_at, decision_note, executed_at, result, dm_closed_at, staff_message_id, thread_id,
    created_at, first_response_at, closed_at, close_reason, reminder_due_at, timeout_due_at, reminded_at, timed_out_at
FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_new RENAME TO tickets;
CREATE INDEX tickets_open ON tickets(status, id) WHERE status != 'closed';
CREATE INDEX tickets_customer ON tickets(customer_id, status);
CREATE INDEX tickets_created ON tickets(created_at);
CREATE INDEX tickets_reminder_due ON tickets(reminder_due_at) WHERE reminded_at IS NULL;
CREATE INDEX tickets_timeout_due ON tickets(timeout_due_at) WHERE timed_out_at IS NULL;
CREATE INDEX tickets_summary ON tickets(created_at, kind, priority, status, source, action_name, first_response_at,
                                        timed_out_at, conversation_id);
