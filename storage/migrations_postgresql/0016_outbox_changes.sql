-- 0016 (SQLite 0033): an operator's edit or deletion of a relayed message is owed to the customer's DM copy like a message (retried, kept across restarts, in order).
ALTER TABLE outbox ADD COLUMN change_of BIGINT;
ALTER TABLE outbox ADD COLUMN change TEXT CHECK (change IN ('edit', 'delete'));
