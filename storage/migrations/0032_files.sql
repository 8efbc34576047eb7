-- 0032: files customers and operators send, kept as bytes (Discord's attachment links expire within a day; every bot host reads the database).
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    turn_id INTEGER REFERENCES turns(id),
    origin TEXT NOT NULL,
    filename TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    readable INTEGER NOT NULL DEFAULT 0,
    data BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX files_customer ON files(customer_id, created_at);
