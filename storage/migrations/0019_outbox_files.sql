-- 0019: a DM owed with a file (a customer's copy of their ticket's transcript).
ALTER TABLE outbox ADD COLUMN file_name TEXT;
ALTER TABLE outbox ADD COLUMN file_data BLOB;
