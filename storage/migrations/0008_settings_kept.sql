-- 0008: small facts the bot keeps between starts (e.g. the hash of the slash commands last registered).
CREATE TABLE kept (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL
);
