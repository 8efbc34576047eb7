-- 0025: the operators' copilot: drafted answers (what was suggested, what was finally sent, by whom), and desk_outbox without a CHECK on op (storage/records.py DeskOp validates it) so the draft's post and its ending are ops like the rest, and the next op is a line of code.
CREATE TABLE desk_outbox_v4 (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER NOT NULL REFERENCES tickets(id),
    op              TEXT NOT NULL,
    content         TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT,
    created_at      REAL NOT NULL
);
INSERT INTO desk_outbox_v4 SELECT * FROM desk_outbox;
DROP TABLE desk_outbox;
ALTER TABLE desk_outbox_v4 RENAME TO desk_outbox;
CREATE INDEX desk_outbox_pending ON desk_outbox(ticket_id, id) WHERE status = 'pending';
CREATE TABLE drafts (
    id                INTEGER PRIMARY KEY,
    ticket_id         INTEGER NOT NULL REFERENCES tickets(id),
    status            TEXT NOT NULL,        -- drafting, suggested, sent, edited, discarded, superseded, failed
    text              TEXT NOT NULL DEFAULT '',
    instructions      TEXT,                 -- /draft's, when an operator asked for it
    requested_by_name TEXT,
    message_id        INTEGER,              -- the draft's message in the ticket's thread
    sent_text         TEXT,                 -- what was relayed (the draft, or the operator's edit)
    decided_by        INTEGER,
    decided_by_name   TEXT,
    decided_at        REAL,
    error             TEXT,
    created_at        REAL NOT NULL
);
CREATE INDEX drafts_ticket ON drafts (ticket_id, id);
CREATE INDEX drafts_created ON drafts (created_at);
