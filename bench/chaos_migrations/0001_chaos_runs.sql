-- Every action the chaos bench runs is a row: a double or an unapproved run shows.
CREATE TABLE IF NOT EXISTS chaos_runs (
    id          INTEGER PRIMARY KEY,
    action      TEXT NOT NULL,
    tag         TEXT NOT NULL,
    customer    INTEGER NOT NULL,
    at          REAL NOT NULL
);
