-- 0027: what each Claude call used (input, cache write, cache read, output tokens, model), with the conversation or ticket it served: the cost per conversation, the cache's share, and a customer's daily budget.
CREATE TABLE llm_usage (
    id                 INTEGER PRIMARY KEY,
    at                 REAL NOT NULL,
    purpose            TEXT NOT NULL,       -- assistant, draft, case, summary
    model              TEXT NOT NULL,
    customer_id        INTEGER,
    conversation_id    INTEGER,
    ticket_id          INTEGER,
    input_tokens       INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL
);
CREATE INDEX llm_usage_at ON llm_usage (at);
CREATE INDEX llm_usage_customer ON llm_usage (customer_id, at);
CREATE INDEX llm_usage_conversation ON llm_usage (conversation_id);
