-- 0011: other agents on the desk (MCP): an agent is a customer row with a name and no DMs; tickets keep the answer, the agent's idempotency key and an approval's expiry.
ALTER TABLE customers ADD COLUMN agent_name TEXT;
CREATE UNIQUE INDEX customers_agent_name ON customers(agent_name) WHERE agent_name IS NOT NULL;
ALTER TABLE tickets ADD COLUMN answer TEXT;
ALTER TABLE tickets ADD COLUMN answered_by_name TEXT;
ALTER TABLE tickets ADD COLUMN idempotency_key TEXT;
ALTER TABLE tickets ADD COLUMN expires_at REAL;
CREATE UNIQUE INDEX tickets_idempotency ON tickets(customer_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tickets_expiring ON tickets(expires_at) WHERE expires_at IS NOT NULL AND status = 'open';
