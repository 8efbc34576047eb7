-- 0023: a customer message that was a one-time code (stored redacted) is marked by a column, not known by its text: typing "[one-time code]" no longer passes for one.
ALTER TABLE turns ADD COLUMN one_time_code INTEGER NOT NULL DEFAULT 0;
