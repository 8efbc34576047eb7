-- 0018: tickets quiet for [desk] auto_close_hours get an "anything else?" message, then close: when it was sent.
ALTER TABLE tickets ADD COLUMN auto_close_warned_at REAL;
