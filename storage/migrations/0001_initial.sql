-- 0001: customers, conversations, turns, the outbox of owed DMs, and the append-only audit log.
CREATE TABLE customers (
    id            INTEGER PRIMARY KEY,
    discord_id    INTEGER NOT NULL UNIQUE,
    display_name  TEXT NOT NULL DEFAULT '',
    dm_status     TEXT NOT NULL DEFAULT 'open' CHECK (dm_status IN ('open', 'closed')),
    dm_closed_at  REAL,
    created_at    REAL NOT NULL
);

CREATE TABLE conversations (
    id               INTEGER PRIMARY KEY,
    customer_id      INTEGER NOT NULL REFERENCES customers(id),
    started_at       REAL NOT NULL,
    last_activity_at REAL NOT NULL,
    ended_at         REAL,
    ai_notice_sent   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX conversations_customer ON conversations(customer_id, id);

-- kind: customer | assistant | tool_use | tool_result | operator | system
-- status (customer turns): pending until answered; answered; held (waiting for a person)
CREATE TABLE turns (
    id                 INTEGER PRIMARY KEY,
    conversation_id    INTEGER NOT NULL REFERENCES conversations(id),
    customer_id        INTEGER NOT NULL REFERENCES customers(id),
    kind               TEXT NOT NULL CHECK (kind IN
                         ('customer', 'assistant', 'tool_use', 'tool_result', 'operator', 'system')),
    content            TEXT NOT NULL DEFAULT '',
    data               TEXT,
    discord_message_id INTEGER,
    status             TEXT NOT NULL DEFAULT 'done',
    attempts           INTEGER NOT NULL DEFAULT 0,
    -- A reply is stored after messages that arrived while it was written; it belongs right
    -- after the last message it answers. Conversation order is (COALESCE(anchor_id, id), id).
    anchor_id          INTEGER,
    created_at         REAL NOT NULL
);
CREATE INDEX turns_conversation ON turns(conversation_id, id);
CREATE INDEX turns_pending ON turns(customer_id, status) WHERE status = 'pending';
CREATE UNIQUE INDEX turns_discord_message ON turns(discord_message_id) WHERE discord_message_id IS NOT NULL;

-- Everything the bot owes a customer, one row per Discord message (<= 2000 chars), sent in id order.
CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY,
    customer_id        INTEGER NOT NULL REFERENCES customers(id),
    turn_id            INTEGER REFERENCES turns(id),
    content            TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'refused', 'failed')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    REAL NOT NULL,
    last_error         TEXT,
    created_at         REAL NOT NULL,
    sent_at            REAL,
    discord_message_id INTEGER
);
CREATE INDEX outbox_pending ON outbox(customer_id, id) WHERE status = 'pending';

CREATE TABLE audit (
    id       INTEGER PRIMARY KEY,
    at       REAL NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT,
    detail   TEXT
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
