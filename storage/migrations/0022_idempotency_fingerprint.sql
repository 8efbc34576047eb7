-- 0022: an agent's idempotency key is bound to the request it first stood for (a hash of its arguments): reused with other arguments it is refused.
ALTER TABLE tickets ADD COLUMN idempotency_fingerprint TEXT;
