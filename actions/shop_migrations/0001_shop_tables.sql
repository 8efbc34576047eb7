-- The example shop's accounts, orders, subscriptions and advice requests (IF NOT EXISTS: databases
-- made before the shop had migrations already have them).
CREATE TABLE IF NOT EXISTS shop_accounts (
    discord_user_id INTEGER PRIMARY KEY,
    email           TEXT NOT NULL,
    email_updates   INTEGER NOT NULL DEFAULT 1,
    store_credit_cents INTEGER NOT NULL DEFAULT 0,
    discount_percent INTEGER NOT NULL DEFAULT 0,
    deleted_at      REAL,
    created_at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shop_orders (
    id              INTEGER PRIMARY KEY,
    discord_user_id INTEGER NOT NULL,
    item            TEXT NOT NULL,
    quantity        INTEGER NOT NULL,
    total_cents     INTEGER NOT NULL,
    refunded_cents  INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,
    address         TEXT NOT NULL,
    placed_at       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS shop_orders_user ON shop_orders(discord_user_id);
CREATE TABLE IF NOT EXISTS shop_subscriptions (
    id              INTEGER PRIMARY KEY,
    discord_user_id INTEGER NOT NULL,
    plan            TEXT NOT NULL,
    status          TEXT NOT NULL,
    renews_at       REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shop_advice_requests (
    id              INTEGER PRIMARY KEY,
    discord_user_id INTEGER NOT NULL,
    topic           TEXT NOT NULL,
    question        TEXT NOT NULL,
    created_at      REAL NOT NULL
);
