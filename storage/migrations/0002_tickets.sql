-- 0002: tickets for the operator desk, and the desk's own outbox of posts to the staff channel.
-- status: open (waiting for a person) -> answered | approved | denied -> closed.
-- An approval's action runs after the conditional open -> approved update; executed_at/result record it.
CREATE TABLE tickets (
    id               INTEGER PRIMARY KEY,
    customer_id      INTEGER NOT NULL REFERENCES customers(id),
    conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
    kind             TEXT NOT NULL CHECK (kind IN ('question', 'approval', 'handover')),
    source           TEXT NOT NULL,
    priority         TEXT NOT NULL CHECK (priority IN ('urgent', 'high', 'normal')),
    status           TEXT NOT NULL DEFAULT 'open'
                       CHECK (status IN ('open', 'answered', 'approved', 'denied', 'closed')),
    question         TEXT NOT NULL,
    reason           TEXT NOT NULL DEFAULT '',
    action_name      TEXT,
    action_params    TEXT,
    tool_use_id      TEXT,
    claimed_by       INTEGER,
    claimed_by_name  TEXT,
    -- An operator talking to the customer directly (takeover); 0 = the relay of no-AI mode.
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
    close_reason     TEXT
);
CREATE INDEX tickets_open ON tickets(status, id) WHERE status != 'closed';
CREATE INDEX tickets_customer ON tickets(customer_id, status);
CREATE INDEX tickets_created ON tickets(created_at);

-- Posts to the staff channel, in id order per ticket: 'open' creates the message and thread, then
-- 'post' writes in the thread, 'refresh' re-renders the ticket message, 'archive' archives the thread.
CREATE TABLE desk_outbox (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER NOT NULL REFERENCES tickets(id),
    op              TEXT NOT NULL CHECK (op IN ('open', 'post', 'refresh', 'archive')),
    content         TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT,
    created_at      REAL NOT NULL
);
CREATE INDEX desk_outbox_pending ON desk_outbox(ticket_id, id) WHERE status = 'pending';

-- Customer turns relayed to an operator during a take-over are not for Claude to answer.
-- (turns.status gains 'relayed'; the column has no CHECK, so this is documentation.)
