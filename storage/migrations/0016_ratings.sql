-- 0016: customers rate how they were helped (1-5, an optional comment), once per ticket or AI-only conversation.
CREATE TABLE ratings (
    id            INTEGER PRIMARY KEY,
    subject       TEXT NOT NULL UNIQUE,
    customer_id   INTEGER NOT NULL REFERENCES customers(id),
    score         INTEGER NOT NULL,
    by_person     INTEGER NOT NULL,
    comment       TEXT,
    created_at    REAL NOT NULL
);
CREATE INDEX ratings_created ON ratings(created_at);
