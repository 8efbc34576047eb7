-- 0003 (SQLite 0020): when a confirmation's question reached the customer (its Discord message id): a typed yes counts only after it.
ALTER TABLE confirmations ADD COLUMN prompt_message_id BIGINT;
ALTER TABLE confirmations ADD COLUMN prompt_sent_at DOUBLE PRECISION;
