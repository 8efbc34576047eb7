-- 0014: operators block abusive customers (until a time, with a reason); the customer is told once. A customer over [abuse] messages_per_minute is told once per minute.
ALTER TABLE customers ADD COLUMN blocked_until REAL;
ALTER TABLE customers ADD COLUMN blocked_reason TEXT;
ALTER TABLE customers ADD COLUMN block_told INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN slow_told_at REAL;
