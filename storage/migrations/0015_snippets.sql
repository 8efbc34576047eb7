-- 0015: saved replies operators send with /reply snippet: (placeholders filled in when sent).
CREATE TABLE snippets (
    name        TEXT PRIMARY KEY,
    text        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  REAL NOT NULL
);
