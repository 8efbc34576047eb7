-- 0024: the business's knowledge (files in HANDOFF_KNOWLEDGE and operators' saved answers) as passages searched with FTS5 (bm25), and what the summary reports of their use.
CREATE TABLE knowledge_files (
    path       TEXT PRIMARY KEY,
    sha256     TEXT NOT NULL,
    passages   INTEGER NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE TABLE knowledge_passages (
    id            INTEGER PRIMARY KEY,
    origin        TEXT NOT NULL,            -- 'file', 'saved' (an operator's answer), 'added' (/kb add)
    path          TEXT,                     -- the file it came from (origin 'file')
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    url           TEXT,
    question      TEXT,                     -- a saved answer's question
    valid_until   REAL,                     -- not given to Claude after this
    ticket_id     INTEGER,                  -- the ticket a saved answer came from
    saved_by      INTEGER,
    saved_by_name TEXT,
    created_at    REAL NOT NULL
);
CREATE INDEX knowledge_passages_path ON knowledge_passages (path);
-- rowid = knowledge_passages.id; written with it in one transaction
CREATE VIRTUAL TABLE knowledge_fts USING fts5(title, body, tokenize = 'porter unicode61');
CREATE TABLE knowledge_uses (
    id              INTEGER PRIMARY KEY,
    passage_id      INTEGER NOT NULL,
    title           TEXT NOT NULL,          -- as it was: a passage may be re-indexed or removed
    origin          TEXT NOT NULL,
    conversation_id INTEGER,
    at              REAL NOT NULL
);
CREATE INDEX knowledge_uses_at ON knowledge_uses (at);
CREATE INDEX knowledge_uses_passage ON knowledge_uses (passage_id);
CREATE TABLE knowledge_misses (
    id              INTEGER PRIMARY KEY,
    question        TEXT NOT NULL,
    ticket_id       INTEGER,
    conversation_id INTEGER,
    at              REAL NOT NULL
);
CREATE INDEX knowledge_misses_at ON knowledge_misses (at);
