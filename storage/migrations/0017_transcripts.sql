-- 0017: a closed ticket's transcript is posted to its thread (a new desk_outbox op; SQLite cannot change a CHECK in place), and operators' internal notes are kept for it.
CREATE TABLE desk_outbox_v3 (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER NOT NULL REFERENCES tickets(id),
    op              TEXT NOT NULL CHECK (op IN ('open', 'post', 'ping', 'refresh', 'archive', 'transcript')),
    content         TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT,
    created_at      REAL NOT NULL
);
INSERT INTO desk_outbox_v3 SELECT * FROM desk_outbox;
DROP TABLE desk_outbox;
ALTER TABLE desk_outbox_v3 RENAME TO desk_outbox;
CREATE INDEX desk_outbox_pending ON desk_outbox(ticket_id, id) WHERE status = 'pending';

CREATE TABLE thread_notes (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    author      TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX thread_notes_ticket ON thread_notes(ticket_id, id);
